"""Image quality metrics in numpy + OpenCV (no torch, no scikit-image at run time).

SSIM follows Wang et al. 2004 as scikit-image computes it with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``: an 11×11
Gaussian window (σ = 1.5, truncated at 3.5σ), K1 = 0.01, K2 = 0.03, the mean
taken over the image minus a 5-pixel border, then over channels.
"""

from __future__ import annotations

import cv2
import numpy as np

_SIGMA = 1.5
_RADIUS = int(3.5 * _SIGMA + 0.5)  # 5: scikit-image's truncation, an 11×11 window


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _check_pair(reference: np.ndarray, test: np.ndarray) -> None:
    if reference.shape != test.shape:
        raise ValueError(f"images differ in shape: {reference.shape} vs {test.shape}")


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB. uint8 inputs are scaled to [0, 1] first.

    Args:
        reference, test: arrays of one shape (H×W or H×W×C).
        data_range: peak value of the (float) data.
    """
    _check_pair(reference, test)
    mse = float(np.mean((_as_float(reference) - _as_float(test)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity, averaged over channels. uint8 inputs are scaled to [0, 1].

    Args:
        reference, test: arrays of one shape, H×W or H×W×C, H and W > 10.
        data_range: peak value of the (float) data.
    """
    _check_pair(reference, test)
    x, y = _as_float(reference), _as_float(test)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    if min(x.shape[:2]) <= 2 * _RADIUS:
        raise ValueError(f"SSIM needs images larger than {2 * _RADIUS}×{2 * _RADIUS}, got {x.shape[:2]}")

    def local_mean(image: np.ndarray) -> np.ndarray:
        # Border handling does not matter: the border is cropped below.
        return cv2.GaussianBlur(image, (2 * _RADIUS + 1, 2 * _RADIUS + 1), _SIGMA, borderType=cv2.BORDER_REFLECT)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    scores = []
    for channel in range(x.shape[2]):
        a, b = x[..., channel], y[..., channel]
        mu_a, mu_b = local_mean(a), local_mean(b)
        var_a = local_mean(a * a) - mu_a**2
        var_b = local_mean(b * b) - mu_b**2
        cov = local_mean(a * b) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        scores.append(ssim_map[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS].mean())
    return float(np.mean(scores))
