"""runtime.Deblurrer and the backend registry: contract, normalisation, validation, errors."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

import runtime.deblurrer
from runtime import Deblurrer, available_backends, create_backend
from runtime.backends import BACKENDS
from runtime.constants import HALO_PX, MAX_RADIUS_PX
from runtime.tiling import round_up

HEIGHT, WIDTH = 22, 27  # small, and neither a multiple of 4 nor of the tile


@pytest.fixture(scope="module")
def deblurrer(random_onnx_model):
    with Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=64) as instance:
        yield instance


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    radius = rng.uniform(0, 6, (HEIGHT, WIDTH)).astype(np.float32)
    return image, radius


def test_output_matches_a_hand_built_network_pass(deblurrer, inputs):
    """Independent oracle: reflect-pad by the halo and to 4 with np.pad, normalise by hand, crop."""
    image, radius = inputs
    pads = ((HALO_PX, HALO_PX + round_up(HEIGHT, 4) - HEIGHT), (HALO_PX, HALO_PX + round_up(WIDTH, 4) - WIDTH))
    rgb = np.pad(image[..., ::-1], pads + ((0, 0),), mode="reflect").astype(np.float32) / 255
    scaled = np.pad(radius, pads, mode="reflect") / np.float32(MAX_RADIUS_PX)
    sharp = deblurrer.backend.run(
        np.ascontiguousarray(rgb.transpose(2, 0, 1)[None]), np.ascontiguousarray(scaled[None, None])
    )[0].transpose(1, 2, 0)
    expected = np.rint(sharp[HALO_PX : HALO_PX + HEIGHT, HALO_PX : HALO_PX + WIDTH, ::-1] * 255).astype(np.uint8)
    result = deblurrer.deblur(image, radius)
    assert result.dtype == np.uint8 and result.shape == image.shape
    assert np.abs(result.astype(int) - expected).max() <= 1  # float rounding at .5 boundaries only
    assert result.std() > 5, "the random model's output should not be flat"


def test_float_input_gives_float_output_consistent_with_uint8(deblurrer, inputs):
    image, radius = inputs
    as_uint8 = deblurrer.deblur(image, radius)
    as_float = deblurrer.deblur(image.astype(np.float32) / 255, radius)
    assert as_float.dtype == np.float32 and as_float.shape == image.shape
    assert 0 <= as_float.min() and as_float.max() <= 1
    assert np.abs(as_float * 255 - as_uint8).max() <= 0.5 + 1e-3


def test_rgb_flag_is_the_mirror_of_bgr(deblurrer, inputs):
    image, radius = inputs
    bgr = deblurrer.deblur(image, radius, channel_order="bgr")
    rgb = deblurrer.deblur(np.ascontiguousarray(image[..., ::-1]), radius, channel_order="rgb")
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])


def test_radii_above_six_px_are_clipped_with_a_warning(random_onnx_model, inputs):
    """max_radius_px=6: today's single pass, radii above 6 px clipped with a warning."""
    image, radius = inputs
    deblurrer = Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=64, max_radius_px=MAX_RADIUS_PX)
    with pytest.warns(UserWarning, match="clipped to 6 px"):
        large = deblurrer.deblur(image, radius + 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at or below the limit
        clipped = deblurrer.deblur(image, np.full_like(radius, MAX_RADIUS_PX))
    np.testing.assert_array_equal(large, clipped)


def test_radii_above_the_pyramid_limit_are_clipped_with_a_warning(deblurrer, inputs):
    """The default (48 px): radii up to it are deblurred on the pyramid silently, beyond it clipped with the reason."""
    image, radius = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        at_limit = deblurrer.deblur(image, np.full_like(radius, 48.0))
        deblurrer.deblur(image, radius + 10)
    with pytest.warns(UserWarning, match=r"clipped to 48 px \(its coarsest pyramid level, 1/8"):
        beyond = deblurrer.deblur(image, np.full_like(radius, 70.0))
    np.testing.assert_array_equal(beyond, at_limit)


def test_integer_and_float64_maps_are_accepted(deblurrer, inputs):
    image, radius = inputs
    rounded = np.rint(radius)
    reference = deblurrer.deblur(image, rounded.astype(np.float32))
    np.testing.assert_array_equal(deblurrer.deblur(image, rounded.astype(np.uint8)), reference)
    np.testing.assert_array_equal(deblurrer.deblur(image, rounded.astype(np.float64)), reference)


GOOD_IMAGE = np.zeros((8, 10, 3), np.uint8)
GOOD_MAP = np.zeros((8, 10), np.float32)


def with_value(array: np.ndarray, value: float) -> np.ndarray:
    array = array.astype(np.float32)
    array.flat[5] = value
    return array


@pytest.mark.parametrize(
    "image, blur_map, kwargs, message",
    [
        (np.zeros((10,), np.uint8), GOOD_MAP, {}, "3 dimensions"),  # mono H×W is a camera format (issue 11)
        (np.zeros((1, 8, 10, 3), np.uint8), GOOD_MAP, {}, "3 dimensions"),
        (np.zeros((8, 10, 2), np.uint8), GOOD_MAP, {}, "3 colour channels"),  # 1 and 4 channels are accepted
        (np.zeros((8, 10, 5), np.uint8), GOOD_MAP, {}, "3 colour channels"),
        (np.zeros((8, 10, 3), np.float64), GOOD_MAP, {}, "dtype must be uint8 or float32"),
        (np.zeros((8, 10, 3), np.int16), GOOD_MAP, {}, "dtype must be uint8 or float32"),  # uint16 is accepted
        (np.zeros((0, 10, 3), np.uint8), np.zeros((0, 10)), {}, "empty"),
        (np.zeros((8, 0, 3), np.uint8), np.zeros((8, 0)), {}, "empty"),
        (with_value(GOOD_IMAGE, np.nan), GOOD_MAP, {}, "NaN or infinite"),
        (with_value(GOOD_IMAGE, np.inf), GOOD_MAP, {}, "NaN or infinite"),
        (with_value(GOOD_IMAGE, 1.5), GOOD_MAP, {}, r"\[0, 1\]"),
        (with_value(GOOD_IMAGE, -0.1), GOOD_MAP, {}, r"\[0, 1\]"),
        (GOOD_IMAGE, with_value(GOOD_MAP, np.nan), {}, "NaN or infinite radii"),
        (GOOD_IMAGE, with_value(GOOD_MAP, -np.inf), {}, "NaN or infinite radii"),
        (GOOD_IMAGE, with_value(GOOD_MAP, -0.5), {}, "negative radii"),
        (GOOD_IMAGE, np.zeros((8, 11), np.float32), {}, "does not match the image size"),
        (GOOD_IMAGE, np.zeros((10, 8), np.float32), {}, "does not match the image size"),
        (GOOD_IMAGE, np.zeros((8, 10, 1), np.float32), {}, "2 dimensions"),
        (GOOD_IMAGE, np.zeros((8, 10), bool), {}, "real number type"),
        (GOOD_IMAGE, np.zeros((8, 10), np.complex64), {}, "real number type"),
        (GOOD_IMAGE, GOOD_MAP, {"channel_order": "bgra"}, "channel_order"),
        (GOOD_IMAGE.tolist(), GOOD_MAP, {}, "numpy arrays"),
    ],
)
def test_bad_inputs_raise_value_errors_naming_the_problem(deblurrer, image, blur_map, kwargs, message):
    with pytest.raises(ValueError, match=message):
        deblurrer.deblur(image, blur_map, **kwargs)


def test_missing_bundled_model_names_the_regeneration_command(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime.deblurrer, "BUNDLED_MODEL_PATH", tmp_path / "svbrnet.onnx")
    with pytest.raises(FileNotFoundError, match="svbr export --bundled"):
        Deblurrer()
    with pytest.raises(FileNotFoundError, match="model not found"):
        Deblurrer(tmp_path / "other.onnx")


@pytest.mark.parametrize("kwargs", [{"tile": 0}, {"halo": -4}, {"batch_size": 0}])
def test_bad_settings_are_rejected(random_onnx_model, kwargs):
    with pytest.raises(ValueError):
        Deblurrer(random_onnx_model, **kwargs)


@pytest.mark.parametrize(
    "name, value",
    [
        ("strength", -0.1),
        ("strength", 2.5),
        ("strength", float("nan")),
        ("strength", float("inf")),
        ("strength", "1"),
        ("strength", True),
        ("strength", None),
        ("max_radius_px", 5.0),
        ("max_radius_px", 500.0),
        ("max_radius_px", float("nan")),
        ("max_radius_px", "48"),
    ],
)
def test_bad_strength_and_max_radius_name_the_setting(random_onnx_model, name, value):
    with pytest.raises(ValueError, match=name):
        Deblurrer(random_onnx_model, **{name: value})


def test_model_with_a_different_contract_is_refused(random_onnx_model, tmp_path):
    model = onnx.load(str(random_onnx_model))
    for entry in model.metadata_props:
        if entry.key == "svbr.max_radius_px":
            entry.value = "8"
    onnx.save(model, str(tmp_path / "other.onnx"))
    with pytest.raises(ValueError, match="max_radius_px"):
        Deblurrer(tmp_path / "other.onnx")


def test_registry_and_backend_interface(random_onnx_model):
    assert "onnxruntime-cpu" in available_backends()
    with create_backend("auto", random_onnx_model) as backend:
        assert backend.name in BACKENDS
        assert backend.precision == "fp32"
        assert backend.metadata["svbr.halo_px"] == str(HALO_PX)
        out = backend.run(np.zeros((2, 3, 8, 12), np.float32), np.zeros((2, 1, 8, 12), np.float32))
        assert out.shape == (2, 3, 8, 12) and out.dtype == np.float32
        with pytest.raises(ValueError, match="multiples of 4"):
            backend.run(np.zeros((1, 3, 6, 8), np.float32), np.zeros((1, 1, 6, 8), np.float32))
        with pytest.raises(ValueError, match="float32"):
            backend.run(np.zeros((1, 3, 8, 8)), np.zeros((1, 1, 8, 8)))
        # A loaded backend can be handed to a Deblurrer directly.
        assert Deblurrer(backend=backend, tile=None).batch_size == backend.preferred_batch_size
    with pytest.raises(ValueError, match="unknown backend"):
        create_backend("no-such-backend", random_onnx_model)
    if "onnxruntime-cuda" not in available_backends():
        with pytest.raises(RuntimeError, match="cannot run here"):
            create_backend("onnxruntime-cuda", random_onnx_model)
