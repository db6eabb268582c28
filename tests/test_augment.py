"""Tests for training/augment.py: estimated-map augmentation (edge samples + propagation)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.sparse.linalg

from training import augment
from training.synthesis import RADIUS_LEVELS, blur, sample_blur_maps

HEIGHT, WIDTH = 96, 104
VALID_LEVELS = np.concatenate([[0.0], RADIUS_LEVELS])


def textured_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 (H, W, 3): 150 small random coloured rectangles and discs, plus mild noise."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 128, dtype=np.uint8)
    for _ in range(150):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.5:
            corner = (x + int(rng.integers(3, 16)), y + int(rng.integers(3, 16)))
            cv2.rectangle(image, (x, y), corner, colour, -1)
        else:
            cv2.circle(image, (x, y), int(rng.integers(2, 8)), colour, -1)
    noise = rng.normal(0.0, 4.0, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ramp_case() -> tuple[np.ndarray, np.ndarray]:
    """A blurry textured image and its true left→right ramp map."""
    true_map = sample_blur_maps(HEIGHT, WIDTH, np.random.default_rng(3))[0]
    assert true_map.max() > true_map.min()  # really a ramp
    return blur(textured_image(HEIGHT, WIDTH), true_map), true_map


@pytest.mark.parametrize("method", augment.METHODS)
def test_propagate_is_a_real_estimate(ramp_case, method):
    blurry, true_map = ramp_case
    assert augment.edge_mask(blurry).mean() > 0.02
    estimate = augment.propagate(blurry, true_map, method=method)
    assert estimate.dtype == np.float32
    assert estimate.shape == (HEIGHT, WIDTH)
    assert np.all(np.isin(estimate, VALID_LEVELS))
    error = np.abs(estimate - true_map).mean()
    assert 0.01 < error < 1.0, error


@pytest.mark.parametrize("method", augment.METHODS)
def test_no_edges_falls_back_to_all_zeros(method):
    constant = np.full((40, 48, 3), 90, dtype=np.uint8)
    true_map = np.full((40, 48), 3.0, dtype=np.float32)
    estimate = augment.propagate(constant, true_map, method=method)
    assert estimate.dtype == np.float32
    assert estimate.shape == (40, 48)
    assert np.all(estimate == 0.0)


@pytest.mark.parametrize("method", augment.METHODS)
def test_constant_samples_propagate_to_the_constant(ramp_case, method):
    # L·1 = 0 for matting; normalised convolution of a constant is that constant.
    blurry, _ = ramp_case
    true_map = np.full((HEIGHT, WIDTH), 2.25, dtype=np.float32)
    estimate = augment.propagate(blurry, true_map, method=method)
    np.testing.assert_array_equal(estimate, 2.25)


def test_unknown_method_names_the_allowed_ones(ramp_case):
    blurry, true_map = ramp_case
    with pytest.raises(ValueError, match="matting.*domain_transform"):
        augment.propagate(blurry, true_map, method="guided_filter")


@pytest.mark.parametrize(
    "image, radius",
    [
        (np.zeros((20, 30, 3), np.uint8), np.zeros((20, 31), np.float32)),  # size mismatch
        (np.zeros((20, 30, 3), np.float32), np.zeros((20, 30), np.float32)),  # image dtype
        (np.zeros((20, 30), np.uint8), np.zeros((20, 30), np.float32)),  # not 3 channels
        (np.zeros((20, 30, 3), np.uint8), np.zeros((20, 30), np.int32)),  # map dtype
        (np.zeros((20, 30, 3), np.uint8), np.full((20, 30), np.nan, np.float32)),  # NaN
    ],
)
def test_bad_inputs_raise(image, radius):
    with pytest.raises(ValueError):
        augment.propagate(image, radius)


# --- recursive filter oracles ------------------------------------------------


def _impulse_rows(width: int, centre: int) -> np.ndarray:
    signal = np.zeros((3, width))
    signal[:, centre] = 1.0
    return signal


def test_one_rf_iteration_on_a_flat_guide_is_the_closed_form_kernel():
    # Flat guide: every domain distance is 1, a = exp(-√2/σ) (N = 1 → σ_H,1 = σs),
    # and the two-sided recursion's impulse response is (1-a)/(1+a)·a^|n|.
    # Identical rows make the vertical pass the identity.
    width, centre, sigma_s = 201, 100, 3.0
    guide = np.full((3, width, 3), 0.4)
    response = augment.recursive_filter(_impulse_rows(width, centre), guide, sigma_s, 3.75, iterations=1)
    a = np.exp(-np.sqrt(2.0) / sigma_s)
    expected = (1 - a) / (1 + a) * a ** np.abs(np.arange(width) - centre)
    np.testing.assert_allclose(response, np.broadcast_to(expected, response.shape), rtol=1e-12, atol=1e-18)


def test_rf_iteration_schedule_adds_up_to_sigma_s():
    # Each iteration's kernel has variance 2a_i/(1-a_i)²; the variances add, and
    # σ_H,i = σs·√3·2^(N-i)/√(4^N-1) makes them sum to ≈ σs².
    width, centre, sigma_s, n = 401, 200, 10.0, 5
    guide = np.full((3, width, 3), 0.4)
    response = augment.recursive_filter(_impulse_rows(width, centre), guide, sigma_s, 3.75, iterations=n)[0]
    offsets = np.arange(width) - centre
    sigmas = sigma_s * np.sqrt(3) * 2.0 ** (n - np.arange(1, n + 1)) / np.sqrt(4.0**n - 1)
    a = np.exp(-np.sqrt(2.0) / sigmas)
    assert response.sum() == pytest.approx(1.0, abs=1e-12)
    assert (response * offsets**2).sum() == pytest.approx((2 * a / (1 - a) ** 2).sum(), rel=1e-9)
    assert (response * offsets**2).sum() == pytest.approx(sigma_s**2, rel=0.02)


def test_rf_slows_down_at_strong_edges():
    # Guide in [0, 1]: a black/white step (Σ_c |ΔI| = 3) is a domain distance of
    # 1 + 3·σs/σr = 13 px instead of 1, so much less mass crosses it.
    width = 120
    guide = np.zeros((3, width, 3))
    guide[:, 60:] = 1.0
    response = augment.recursive_filter(_impulse_rows(width, 50), guide, 15.0, 3.75, iterations=5)[0]
    flat = augment.recursive_filter(_impulse_rows(width, 50), np.zeros((3, width, 3)), 15.0, 3.75, 5)[0]
    assert 0.0 < response[60:].sum() < 0.5 * flat[60:].sum()


# --- matting Laplacian and solver oracles ------------------------------------


def test_matting_laplacian_matches_the_per_window_definition():
    rng = np.random.default_rng(1)
    height, width, eps = 5, 6, augment.MATTING_EPSILON
    guide = rng.random((height, width, 3))
    reference = np.zeros((height * width, height * width))
    for y in range(height - 2):
        for x in range(width - 2):
            index = [(y + i) * width + x + j for i in range(3) for j in range(3)]
            colours = guide[y : y + 3, x : x + 3].reshape(9, 3)
            centred = colours - colours.mean(axis=0)
            inverse = np.linalg.inv(centred.T @ centred / 9 + eps / 9 * np.eye(3))
            reference[np.ix_(index, index)] += np.eye(9) - (1 + centred @ inverse @ centred.T) / 9
    laplacian = augment.matting_laplacian(guide).toarray()
    np.testing.assert_allclose(laplacian, reference, atol=1e-9 * np.abs(reference).max())


def test_nested_dissection_solve_matches_scipy_spsolve():
    rng = np.random.default_rng(2)
    height, width = 17, 23
    guide = rng.random((height, width, 3))
    weight = 1e-3 * (rng.random(height * width) < 0.1)
    system = (augment.matting_laplacian(guide) + scipy.sparse.diags(weight)).tocsr()
    rhs = weight * rng.random(height * width)
    order = augment.nested_dissection_order(height, width)
    np.testing.assert_array_equal(np.sort(order), np.arange(height * width))
    expected = scipy.sparse.linalg.spsolve(system.tocsc(), rhs)
    solution = augment.solve_banded_spd(system, rhs, height, width)
    np.testing.assert_allclose(solution, expected, rtol=1e-6, atol=1e-9)
