"""``Deblurrer(strength=...)``: output = input + strength × (network output − input), in float before rounding."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from runtime import Deblurrer

HEIGHT, WIDTH = 21, 26


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    radius = rng.uniform(0, 6, (HEIGHT, WIDTH)).astype(np.float32)
    return image, radius


@pytest.fixture(scope="module")
def uint8_model(random_onnx_model, tmp_path_factory):
    from export.io_wrap import wrap_uint8_io

    path = tmp_path_factory.mktemp("strength") / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model)), "bgr"), str(path))
    return path


def test_strength_zero_returns_the_input_exactly(random_onnx_model, uint8_model, inputs):
    image, radius = inputs
    for model in (random_onnx_model, uint8_model):
        deblurrer = Deblurrer(model, tile=None, strength=0)
        np.testing.assert_array_equal(deblurrer.deblur(image, radius), image)
        np.testing.assert_array_equal(deblurrer.deblur(image, radius + 12), image)  # through the pyramid too
    as_float = image.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(
        Deblurrer(random_onnx_model, tile=None, strength=0).deblur(as_float, radius), as_float
    )
    deep = (image.astype(np.uint16) * 257)[..., 0]  # a 16-bit mono camera frame
    np.testing.assert_array_equal(Deblurrer(random_onnx_model, tile=None, strength=0).deblur(deep, radius), deep)


def test_strength_one_is_todays_path_bit_for_bit(random_onnx_model, inputs):
    image, radius = inputs
    deblurrer = Deblurrer(random_onnx_model, tile=16)
    today = deblurrer.deblur(image, radius)
    np.testing.assert_array_equal(Deblurrer(random_onnx_model, tile=16, strength=1.0).deblur(image, radius), today)
    # The general (blending) path with nothing to blend rounds to exactly the same bytes.
    general = deblurrer._deblur_levels(image, radius, "bgr", None, (0,))
    np.testing.assert_array_equal(general, today)
    as_float = image.astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(
        deblurrer._deblur_levels(as_float, radius, "bgr", None, (0,)), deblurrer.deblur(as_float, radius)
    )


@pytest.mark.parametrize("strength", [0.5, 1.5, 2.0])
def test_strength_scales_the_correction_in_float_before_rounding(random_onnx_model, uint8_model, inputs, strength):
    image, radius = inputs
    as_float = image.astype(np.float32) / np.float32(255)
    full = Deblurrer(random_onnx_model, tile=None).deblur(as_float, radius)  # unrounded network output
    expected = np.clip(as_float + np.float32(strength) * (full - as_float), 0, 1)
    scaled = Deblurrer(random_onnx_model, tile=None, strength=strength)
    np.testing.assert_array_equal(scaled.deblur(as_float, radius), expected)
    as_uint8 = scaled.deblur(image, radius)
    assert np.abs(as_uint8.astype(np.float64) - expected * 255).max() <= 0.5 + 1e-3  # rounded once, at the end
    # A uint8-I/O graph rounds its own output: the blend uses that uint8 output, in float, rounded once more.
    graph = Deblurrer(uint8_model, tile=None).deblur(image, radius).astype(np.float32)
    blended = np.rint(np.clip(image + np.float32(strength) * (graph - image), 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(Deblurrer(uint8_model, tile=None, strength=strength).deblur(image, radius), blended)


def test_strength_applies_to_streams(random_onnx_model, inputs):
    image, radius = inputs
    frames = [image, image[::-1].copy()]
    deblurrer = Deblurrer(random_onnx_model, tile=None, strength=0)
    with deblurrer.frames(frames, blur_map=radius[:, :]) as results:
        for result in results:
            np.testing.assert_array_equal(result.sharp, result.image)
