"""Exact tiling: plans, reflect padding, stitching; tiled == full frame for a fake and the real model."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.backends.compare import compare_outputs
from runtime.deblurrer import Deblurrer
from runtime.tiling import extract_window, plan_tiles, reflect_indices, round_up, run_tiled

BOX_RADIUS = 5
BLOCK = 4


def fake_model(windows: np.ndarray) -> np.ndarray:
    """A stand-in network, N×h×w×C float64 -> N×h×w×C, with a known receptive field.

    A (2·5+1)² box filter with zero padding (as the network's convolutions pad),
    then 4×4 block averages broadcast back: like SVBR-Net, it is shift-equivariant
    only by multiples of 4, and each output depends on inputs at most 5 + 3 = 8 px away.
    """
    n, height, width, channels = windows.shape
    padded = np.pad(windows, ((0, 0), (BOX_RADIUS, BOX_RADIUS), (BOX_RADIUS, BOX_RADIUS), (0, 0)))
    box = np.zeros_like(windows)
    for dy in range(2 * BOX_RADIUS + 1):  # fixed summation order: bitwise-reproducible
        for dx in range(2 * BOX_RADIUS + 1):
            box += padded[:, dy : dy + height, dx : dx + width]
    blocks = box.reshape(n, height // BLOCK, BLOCK, width // BLOCK, BLOCK, channels).mean(axis=(2, 4))
    return np.repeat(np.repeat(blocks, BLOCK, axis=1), BLOCK, axis=2)


def run_fake(image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
    """``run_batch`` for two inputs (H×W×3 image, H×W map): the fake model on their sum."""
    return fake_model(image + blur_map[..., None])


def oracle(image: np.ndarray, blur_map: np.ndarray, halo: int) -> np.ndarray:
    """The definition of the full-frame result: reflect-pad (np.pad) by the halo and to a multiple of 4, run, crop."""
    height, width = image.shape[:2]
    extra_h, extra_w = round_up(height, 4) - height, round_up(width, 4) - width
    pads = ((halo, halo + extra_h), (halo, halo + extra_w))
    canvas = np.pad(image, pads + ((0, 0),), mode="reflect") + np.pad(blur_map, pads, mode="reflect")[..., None]
    return fake_model(canvas[None])[0, halo : halo + height, halo : halo + width]


def random_inputs(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((height, width, 3)), rng.random((height, width))


@pytest.mark.parametrize("height, width", [(1, 1), (3, 5), (37, 41), (64, 64), (100, 90), (17, 130)])
@pytest.mark.parametrize("tile", [4, 12, 32, None])
def test_tiled_equals_full_frame_exactly_for_a_fake_model(height, width, tile):
    image, blur_map = random_inputs(height, width)
    halo = 8  # = the fake's receptive-field half-width
    expected = oracle(image, blur_map, halo)
    full = run_tiled([image, blur_map], run_fake, tile=None, halo=halo)
    tiled = run_tiled([image, blur_map], run_fake, tile=tile, halo=halo, batch_size=3)
    assert tiled.shape == (height, width, 3)
    np.testing.assert_array_equal(full, expected)
    np.testing.assert_array_equal(tiled, expected)


def test_too_small_a_halo_breaks_equality():
    """The check above has teeth: 4 px of context is less than the fake's 8 px reach."""
    image, blur_map = random_inputs(70, 90)
    full = run_tiled([image, blur_map], run_fake, tile=None, halo=4)
    tiled = run_tiled([image, blur_map], run_fake, tile=16, halo=4)
    assert not np.array_equal(full, tiled)


@pytest.mark.parametrize("start, stop, size", [(-9, 14, 5), (-84, 90, 7), (-3, 4, 2), (-10, 30, 12), (-5, 6, 1)])
def test_reflect_indices_match_numpy_pad(start, stop, size):
    axis = np.arange(size)
    padded = np.pad(axis, (max(0, -start), max(0, stop - size)), mode="reflect")
    expected = padded[start + max(0, -start) : stop + max(0, -start)]
    np.testing.assert_array_equal(reflect_indices(start, stop, size), expected)


def test_plan_geometry():
    plan = plan_tiles(1001, 1503, tile=510, halo=84)
    assert (plan.tile_height, plan.tile_width, plan.halo) == (512, 512, 84)  # 510 rounded up to 4
    assert plan.window_height == plan.window_width == 680
    assert len(plan) == 2 * 3
    for row, column in plan.origins:
        assert row % 4 == 0 and column % 4 == 0
        assert row + plan.tile_height <= round_up(1001, 4) and column + plan.tile_width <= round_up(1503, 4)
    covered = np.zeros((1001, 1503), bool)
    for row, column in plan.origins:
        covered[row : row + plan.tile_height, column : column + plan.tile_width] = True
    assert covered.all()


def test_plan_small_image_shrinks_tile_and_rounds_halo():
    plan = plan_tiles(10, 7, tile=512, halo=83)
    assert (plan.tile_height, plan.tile_width, plan.halo, len(plan)) == (12, 8, 84, 1)
    assert plan_tiles(10, 7, tile=None, halo=0).origins == ((0, 0),)


@pytest.mark.parametrize("height, width, tile, halo", [(0, 5, 8, 4), (5, 0, 8, 4), (5, 5, 0, 4), (5, 5, 8, -1)])
def test_plan_rejects_bad_arguments(height, width, tile, halo):
    with pytest.raises(ValueError):
        plan_tiles(height, width, tile, halo)


def test_windows_keep_dtype_and_progress_is_reported():
    image = np.arange(30 * 22 * 3, dtype=np.uint8).reshape(30, 22, 3)
    plan = plan_tiles(30, 22, tile=8, halo=4)
    window = extract_window(image, plan, plan.origins[0])
    assert window.dtype == np.uint8 and window.shape == (16, 16, 3)
    calls = []
    identity = run_tiled(
        [image], lambda w: w, tile=8, halo=4, batch_size=4, on_progress=lambda done, total: calls.append((done, total))
    )
    np.testing.assert_array_equal(identity, image)
    assert calls[-1] == (len(plan), len(plan)) and len(calls) == -(-len(plan) // 4)


def test_run_tiled_rejects_mismatched_inputs_and_bad_results():
    with pytest.raises(ValueError, match="differ in size"):
        run_tiled([np.zeros((8, 8, 3)), np.zeros((8, 9))], run_fake, tile=4, halo=4)
    with pytest.raises(ValueError, match="run_batch returned"):
        run_tiled([np.zeros((8, 8, 3))], lambda w: w[:, :4], tile=4, halo=4)


def test_tiled_equals_full_frame_for_the_network(random_onnx_model):
    """The real network through ONNX Runtime, default halo (84 px), an odd size that is not a tile multiple."""
    rng = np.random.default_rng(1)
    image = rng.random((61, 83, 3), dtype=np.float32)
    radius = rng.uniform(0, 6, (61, 83)).astype(np.float32)
    full = Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=None).deblur(image, radius)
    tiled_deblurrer = Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=32, batch_size=2)
    assert tiled_deblurrer.count_tiles(61, 83) == 6
    tiled = tiled_deblurrer.deblur(image, radius)
    comparison = compare_outputs(full, tiled)
    assert comparison.psnr_db >= 50, str(comparison)
    assert comparison.max_abs <= 1e-5, str(comparison)
