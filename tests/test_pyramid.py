"""Blur-adaptive multi-scale deblurring (issue 19): level plan, weights, blend, exactness, oracles, memory."""

from __future__ import annotations

import tracemalloc
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import Deblurrer, estimate_blur_map, pyramid
from runtime.backends import Backend
from runtime.constants import MAX_RADIUS_PX
from runtime.defocus import blur_large, disk_kernel
from runtime.demo import make_scene
from runtime.metrics import psnr
from runtime.tiling import plan_tiles

HEIGHT, WIDTH = 38, 50  # neither a multiple of 4 nor of the tile; ⅛ level is 5×6


# --- pure functions ---------------------------------------------------------------


@pytest.mark.parametrize("max_radius", [6.0, 10.0, 24.0, 48.0, 100.0, 192.0])
def test_weights_sum_to_one_and_stay_on_level_zero_up_to_six_px(max_radius):
    radius = np.concatenate([np.linspace(0, 250, 5001, dtype=np.float32), [6.0, 12.0, 24.0, 48.0]])
    weights = pyramid.level_weights(radius, max_radius)
    assert weights.shape == (pyramid.level_count(max_radius), radius.size)
    assert weights.min() >= 0 and weights.max() <= 1
    np.testing.assert_allclose(weights.sum(axis=0), 1.0, atol=1e-6)
    small = radius <= MAX_RADIUS_PX
    assert np.all(weights[0, small] == 1)
    assert ((weights > 0).sum(axis=0) <= 2).all()  # at most two neighbouring levels per pixel


def test_each_octave_lands_on_its_level_and_the_plan_lists_what_is_used():
    weights = pyramid.level_weights(np.array([12.0, 24.0, 48.0, 60.0], np.float32), 48.0)
    np.testing.assert_array_equal(weights.T, np.eye(4, dtype=np.float32)[[1, 2, 3, 3]])
    assert pyramid.level_count(6.0) == 1 and pyramid.level_count(48.0) == 4 and pyramid.level_count(49.0) == 5
    assert pyramid.level_plan(np.full((9, 9), 6.0, np.float32), 48.0) == (0,)
    assert pyramid.level_plan(np.full((9, 9), 12.0, np.float32), 48.0) == (1,)
    assert pyramid.level_plan(np.full((9, 9), 40.0, np.float32), 6.0) == (0,)  # max_radius_px 6: one pass
    ramp = np.broadcast_to(np.linspace(0, 20, 600, dtype=np.float32), (600, 600))
    assert pyramid.level_plan(ramp, 48.0) == (0, 1, 2)  # scanned in strips
    assert pyramid.level_size(46, 58, 3) == (6, 7)


def test_sample_bilinear_equals_opencv_upsampling_at_any_pixels():
    small = np.random.default_rng(0).random((13, 17, 3)).astype(np.float32)
    full = cv2.resize(small, (58, 46), interpolation=cv2.INTER_LINEAR)
    rows, columns = np.array([45, 0, 7, 7, 30]), np.arange(58)[::-3]
    np.testing.assert_allclose(pyramid.sample_bilinear(small, rows, columns, 46, 58), full[rows][:, columns], atol=1e-6)


def test_blend_is_the_level0_output_wherever_its_weight_is_one():
    rng = np.random.default_rng(1)
    level0 = rng.random((5, 6, 3)).astype(np.float32) * 255
    image = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    radius = np.where(np.arange(30).reshape(5, 6) % 2 == 0, 3.0, 12.0).astype(np.float32)
    weights = pyramid.level_weights(radius, 48.0)
    correction = rng.normal(0, 5, (5, 6, 3)).astype(np.float32)
    out = pyramid.blend(level0, image, weights, {1: correction})
    small = radius <= 6
    np.testing.assert_array_equal(out[small], level0[small])
    np.testing.assert_allclose(out[~small], (image.astype(np.float32) + correction)[~small], atol=1e-4)


# --- the Deblurrer on the pyramid ---------------------------------------------------


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    columns = np.linspace(0, 1, WIDTH, dtype=np.float32)
    radius = np.broadcast_to(45 * columns**2, (HEIGHT, WIDTH)).astype(np.float32)  # 0-45 px: all four levels
    return image, radius


def test_a_map_up_to_six_px_takes_todays_path_bit_for_bit(random_onnx_model, inputs):
    image, _ = inputs
    small = np.random.default_rng(4).uniform(0, 6, (HEIGHT, WIDTH)).astype(np.float32)
    small[0, 0] = 6.0
    today = Deblurrer(random_onnx_model, tile=None, max_radius_px=6.0)
    default = Deblurrer(random_onnx_model, tile=None)
    assert default.max_radius_px == 48.0
    for picture in (image, image.astype(np.float32) / np.float32(255)):
        np.testing.assert_array_equal(default.deblur(picture, small), today.deblur(picture, small))


def test_pixels_up_to_six_px_keep_todays_output_in_a_map_with_large_radii(random_onnx_model, inputs):
    image, radius = inputs
    today = Deblurrer(random_onnx_model, tile=None, max_radius_px=6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # today's clipping warning
        clipped = today.deblur(image, radius)
    out = Deblurrer(random_onnx_model, tile=None).deblur(image, radius)
    small = radius <= MAX_RADIUS_PX
    assert small.any() and (~small).any()
    np.testing.assert_array_equal(out[small], clipped[small])
    assert not np.array_equal(out[~small], clipped[~small])  # the pyramid did something there


class _BoxBackend(Backend):
    """A stand-in network with a known receptive field (5×5 box, half-width 2): tiled == full frame for halo ≥ 2."""

    name, device, precision, preferred_batch_size = "box", "cpu", "fp32", 3

    def __init__(self) -> None:
        self.model_path, self.metadata = Path("box"), {}

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        box = np.stack([np.stack([cv2.blur(channel, (5, 5)) for channel in item]) for item in image])
        return np.clip(image + 3.0 * blur_map * (image - box), 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("dtype, strength", [(np.uint8, 1.0), (np.float32, 1.0), (np.uint8, 1.5)])
def test_tiled_equals_full_frame_at_every_level(inputs, dtype, strength):
    image, radius = inputs
    image = image if dtype == np.uint8 else image.astype(np.float32) / np.float32(255)
    assert pyramid.level_plan(radius, 48.0) == (0, 1, 2, 3)
    tiled = Deblurrer(backend=_BoxBackend(), tile=4, halo=4, strength=strength)
    assert [len(plan_tiles(*pyramid.level_size(HEIGHT, WIDTH, level), 4, 4)) for level in range(4)] == [130, 35, 9, 4]
    full = Deblurrer(backend=_BoxBackend(), tile=None, halo=4, strength=strength)
    progress: list[tuple[int, int]] = []
    out = tiled.deblur(image, radius, on_progress=lambda done, total: progress.append((done, total)))
    np.testing.assert_array_equal(out, full.deblur(image, radius))
    total = tiled.count_tiles(HEIGHT, WIDTH, radius)
    assert progress[-1] == (total, total) and total == 130 + 35 + 9 + 4


def test_uint8_io_models_take_the_pyramid_too(random_onnx_model, inputs, tmp_path):
    import onnx

    from export.io_wrap import wrap_uint8_io

    image, radius = inputs
    path = tmp_path / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model)), "bgr"), str(path))
    out = Deblurrer(path, tile=None).deblur(image, radius)
    reference = Deblurrer(random_onnx_model, tile=None).deblur(image, radius)
    assert np.abs(out.astype(int) - reference).max() <= 2  # uint8 rounding inside the graph, per level
    assert not np.array_equal(out, Deblurrer(path, tile=None, max_radius_px=6.0).deblur(image, np.minimum(radius, 6)))


def test_a_uniform_12px_blur_through_the_pyramid_beats_the_clipped_path():
    """Oracle with the bundled model: 12 px reads 6 px at half scale, inside the trained range."""
    truth = make_scene(192, 256, seed=0)
    radius = np.full(truth.shape[:2], 12.0, np.float32)
    blurry = blur_large(truth, radius)
    np.testing.assert_array_equal(
        blurry[96:98, 128:130],
        cv2.filter2D(truth.astype(np.float32), -1, disk_kernel(12.0), borderType=cv2.BORDER_REPLICATE)[96:98, 128:130]
        .round()
        .astype(np.uint8),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clipped = Deblurrer(tile=None, max_radius_px=6.0, threads=1).deblur(blurry, radius)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 12 px is handled now: no clipping warning
        sharp = Deblurrer(tile=None, threads=1).deblur(blurry, radius)
    assert psnr(truth, sharp) > psnr(truth, clipped) + 1.0
    assert psnr(truth, sharp) > psnr(truth, blurry) + 0.5


def test_the_estimator_reads_beyond_six_px_on_a_12px_uniform_blur():
    from tests.test_estimate import dead_leaves_scene

    blurry = blur_large(dead_leaves_scene(4, 256, 320), np.full((256, 320), 12.0, np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        single = estimate_blur_map(blurry)
    large = estimate_blur_map(blurry, max_radius_px=48)
    assert single.max() <= MAX_RADIUS_PX
    assert 9.0 <= float(np.median(large)) <= 15.0, np.median(large)
    small = blur_large(dead_leaves_scene(4, 256, 320), np.full((256, 320), 2.0, np.float32))
    np.testing.assert_array_equal(estimate_blur_map(small, max_radius_px=48), estimate_blur_map(small))


# --- memory ------------------------------------------------------------------------


class _HalfwayBackend(Backend):
    """A pointwise stand-in network (no receptive field): moves every pixel halfway to mid-grey."""

    name, device, precision, preferred_batch_size = "halfway", "cpu", "fp32", 1

    def __init__(self) -> None:
        self.model_path, self.metadata = Path("halfway"), {}

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        return (np.float32(0.5) * image + np.float32(0.25)).astype(np.float32)


def test_memory_stays_bounded_on_a_large_photo():
    """No full-size float copy: beyond the output, the pyramid path allocates < 6 bytes per pixel + one batch.

    The coarser levels' float32 corrections are 12 B × (1/4 + 1/16 + 1/64) ≈ 4 B per full-size pixel, and
    one level's image and map at a time; a full-size float32 RGB copy alone would be 12 B per pixel.
    6 MP here keeps the test fast; benchmarks/pyramid.py measures 24 MP.
    """
    height, width = 2000, 3000
    image = np.full((height, width, 3), 100, np.uint8)
    radius = np.broadcast_to(np.linspace(0, 40, width, dtype=np.float32), (height, width))
    deblurrer = Deblurrer(backend=_HalfwayBackend(), tile=512, halo=0)
    tracemalloc.start()
    try:
        sharp = deblurrer.deblur(image, radius)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sharp.shape == image.shape
    output = sharp.nbytes
    window_batch = 512 * 512 * 3 * 4 * 30  # generous: a few dozen float32 temporaries of one window
    assert peak - output < 6 * height * width + window_batch, (peak - output) / (height * width)
    assert sharp[0, 0, 0] == 114  # in focus: (100/255 · 0.5 + 0.25) · 255 = 113.75
