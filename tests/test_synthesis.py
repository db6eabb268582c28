"""Blur synthesis against independent oracles (SPEC §3)."""

import cv2
import numpy as np
import pytest

from training.synthesis import (
    DRAWS_PER_FAMILY,
    MAP_FAMILIES,
    RADIUS_LEVELS,
    blur,
    disk_kernel,
    quantize_radius_px,
    sample_blur_maps,
)


def supersampled_disk(radius_px: float, samples: int = 400) -> np.ndarray:
    """Oracle: area coverage by a dense 2-D grid of sample points in every pixel."""
    half = int(np.ceil(radius_px + 0.5)) - 1
    size = 2 * half + 1
    sub = (np.arange(size * samples) + 0.5) / samples - 0.5 - half
    inside = (sub[:, None] ** 2 + sub[None, :] ** 2) <= radius_px**2
    coverage = inside.reshape(size, samples, size, samples).mean(axis=(1, 3))
    return coverage / coverage.sum()


def test_radius_levels():
    assert len(RADIUS_LEVELS) == 23
    np.testing.assert_allclose(RADIUS_LEVELS, 0.5 + 0.25 * np.arange(23))


@pytest.mark.parametrize("radius", [0.5, 0.75, 1.0, 2.25, 3.5, 6.0])
def test_disk_kernel_matches_supersampled_coverage(radius):
    kernel = disk_kernel(radius)
    oracle = supersampled_disk(radius)
    assert kernel.shape == oracle.shape
    assert kernel.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(kernel, oracle, atol=2e-4)
    np.testing.assert_array_equal(kernel, kernel[::-1, ::-1])


def test_radius_half_pixel_is_identity():
    """A 0.5 px disk lies inside its centre pixel, so it blurs nothing."""
    np.testing.assert_array_equal(disk_kernel(0.5), [[1.0]])


@pytest.mark.parametrize("radius", [1.0, 2.75, 6.0])
def test_constant_map_equals_filter2d(radius):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (41, 37, 3), dtype=np.uint8)
    kernel = supersampled_disk(radius).astype(np.float32)
    expected = cv2.filter2D(image.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REPLICATE)
    result = blur(image, np.full((41, 37), radius, np.float32))
    assert np.abs(result.astype(int) - np.rint(expected).astype(int)).max() <= 1


def test_spatially_varying_blur_matches_per_pixel_loop():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (23, 19, 3), dtype=np.uint8)
    radius_map = rng.choice(np.concatenate([[0.0], RADIUS_LEVELS]), size=(23, 19))
    radius_map += rng.uniform(-0.1, 0.1, radius_map.shape) * (radius_map > 0)  # rounds to a level
    padded = np.pad(image.astype(np.float64), ((8, 8), (8, 8), (0, 0)), mode="edge")
    expected = np.empty(image.shape)
    for y in range(23):
        for x in range(19):
            radius = quantize_radius_px(np.array(radius_map[y, x]))
            if radius == 0:
                expected[y, x] = image[y, x]
                continue
            kernel = supersampled_disk(float(radius), samples=100)
            h = kernel.shape[0] // 2
            window = padded[y + 8 - h : y + 8 + h + 1, x + 8 - h : x + 8 + h + 1]
            expected[y, x] = np.einsum("ij,ijc->c", kernel, window)
    result = blur(image, radius_map.astype(np.float32))
    assert np.abs(result.astype(int) - np.rint(expected).astype(int)).max() <= 1


def test_zero_radius_copies_pixels():
    image = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(blur(image, np.zeros((16, 16), np.float32)), image)


def test_blur_rejects_bad_input():
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="does not match"):
        blur(image, np.zeros((8, 9)))
    with pytest.raises(ValueError, match="uint8"):
        blur(image.astype(np.float32), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="non-negative"):
        blur(image, np.full((8, 8), -1.0))


def family(maps: np.ndarray, name: str) -> np.ndarray:
    start = MAP_FAMILIES.index(name) * DRAWS_PER_FAMILY
    return maps[start : start + DRAWS_PER_FAMILY]


@pytest.mark.parametrize("height, width", [(360, 340), (37, 53), (1, 1)])
def test_map_values_are_levels(height, width):
    maps = sample_blur_maps(height, width, np.random.default_rng(0))
    assert maps.shape == (39, height, width) and maps.dtype == np.float32
    allowed = set(np.concatenate([[0.0], RADIUS_LEVELS]).tolist())
    assert set(np.unique(maps).tolist()) <= allowed


def test_maps_are_deterministic_by_seed():
    a = sample_blur_maps(40, 30, np.random.default_rng(5))
    b = sample_blur_maps(40, 30, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_family_shapes():
    maps = sample_blur_maps(360, 340, np.random.default_rng(4))
    for ramp in family(maps, "ramp_left_right"):
        row = ramp[0]
        assert np.all(ramp == row)  # varies along x only
        assert np.all(np.diff(row) >= 0) and row[0] == 0 and row[-1] >= RADIUS_LEVELS[-6]
    for ramp in family(maps, "ramp_bottom_top"):
        column = ramp[:, 0]
        assert np.all(ramp == column[:, None])
        assert np.all(np.diff(column) <= 0) and column[-1] == 0
    for stairs in family(maps, "stairs_top_bottom"):
        column = stairs[:, 0]
        assert np.all(np.diff(column) >= 0) and column[0] == 0
        steps = np.unique(column[column > 0])
        assert len(steps) == 4 and np.allclose(np.diff(steps), 0.5)  # +2 levels per step
    for stairs in family(maps, "stairs_right_left"):
        row = stairs[0]
        assert np.all(np.diff(row) <= 0) and row[0] > 0  # starts at the top step's level
        assert len(np.unique(row)) == 4
    for uniform in family(maps, "uniform"):
        assert len(np.unique(uniform)) == 1
    for product in family(maps, "product_inc_inc"):
        assert np.all(np.diff(product, axis=0) >= 0) and np.all(np.diff(product, axis=1) >= 0)
        assert product[0, 0] == 0 and product[-1, -1] > 0
    for product in family(maps, "product_inc_dec"):
        assert np.all(np.diff(product, axis=1) >= 0) and np.all(np.diff(product, axis=0) <= 0)
