"""The classical layered Wiener baseline restores what it should."""

import cv2
import numpy as np
import pytest

from runtime.metrics import psnr
from training.baselines import choose_regularisation, layered_deconvolution, wiener_deconvolve
from training.synthesis import blur


def smooth_scene(height=64, width=72, seed=0):
    rng = np.random.default_rng(seed)
    noise = rng.random((height // 4, width // 4, 3)).astype(np.float32)
    return np.clip(cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC), 0, 1)


def test_wiener_inverts_a_disk_blur():
    sharp = smooth_scene()
    blurred = blur(np.rint(sharp * 255).astype(np.uint8), np.full(sharp.shape[:2], 2.0)) / 255.0
    restored = wiener_deconvolve(blurred, 2.0, 1e-2)
    inner = (slice(8, -8), slice(8, -8))
    assert psnr(sharp[inner], restored[inner]) > psnr(sharp[inner], blurred[inner]) + 5


def test_in_focus_pixels_are_kept():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(layered_deconvolution(image, np.zeros((32, 32)), 1e-2), image)


def test_layered_beats_blurry_on_a_ramp():
    sharp = np.rint(smooth_scene(seed=2) * 255).astype(np.uint8)
    radius = np.broadcast_to(np.linspace(0, 4, sharp.shape[1]), sharp.shape[:2]).astype(np.float32)
    blurry = blur(sharp, radius)
    restored = layered_deconvolution(blurry, radius, 1e-2)
    assert restored.dtype == np.uint8 and restored.shape == sharp.shape
    assert psnr(sharp, restored) > psnr(sharp, blurry) + 2


def test_choose_regularisation_picks_the_best_score():
    sharp = np.rint(smooth_scene(seed=3) * 255).astype(np.uint8)
    radius = np.full(sharp.shape[:2], 3.0, np.float32)
    best, scores = choose_regularisation([(blur(sharp, radius), radius, sharp)], (1e-4, 1e-2, 1.0))
    assert scores[best] == max(scores.values()) and best != 1.0


def test_map_size_mismatch_is_rejected():
    with pytest.raises(ValueError, match="does not match"):
        layered_deconvolution(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9)), 1e-2)
