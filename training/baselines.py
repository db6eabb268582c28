"""Classical baseline: layered non-blind Wiener deconvolution (numpy + OpenCV).

The stand-in for the paper's classical column (Krishnan–Fergus & Levin,
layered): the whole image is deconvolved once with each blur level's disk,
then every pixel takes the deconvolution of its own level from the map.
The Wiener regularisation (a constant noise-to-signal power ratio) is chosen
on the training split by :func:`choose_regularisation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from runtime.metrics import psnr
from training.synthesis import RADIUS_LEVELS, disk_kernel, level_index, quantize_radius_px

#: Wiener noise-to-signal ratios tried on the training split.
REGULARISATION_CANDIDATES: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)


def _kernel_spectrum(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Optical transfer function of ``kernel`` on an FFT grid of ``shape`` (centre moved to 0, 0)."""
    padded = np.zeros(shape)
    k = kernel.shape[0]
    padded[:k, :k] = kernel
    padded = np.roll(padded, (-(k // 2), -(k // 2)), axis=(0, 1))
    return np.fft.rfft2(padded)


def wiener_deconvolve(image: np.ndarray, radius_px: float, regularisation: float) -> np.ndarray:
    """Deconvolve a whole image by one disk.

    Args:
        image: float H×W×C in [0, 1].
        radius_px: disk radius in pixels (> 0).
        regularisation: Wiener noise-to-signal power ratio (> 0).

    Returns:
        float H×W×C, unclipped.
    """
    kernel = disk_kernel(radius_px).astype(np.float64)
    # Reflect padding makes the FFT's periodic image continuous at the border, avoiding ringing there.
    pad = 4 * (kernel.shape[0] // 2) + 8
    padded = cv2.copyMakeBorder(image.astype(np.float64), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    if padded.ndim == 2:
        padded = padded[..., None]
    spectrum = _kernel_spectrum(kernel, padded.shape[:2])
    gain = np.conj(spectrum) / (np.abs(spectrum) ** 2 + regularisation)
    restored = np.fft.irfft2(np.fft.rfft2(padded, axes=(0, 1)) * gain[..., None], s=padded.shape[:2], axes=(0, 1))
    return restored[pad:-pad, pad:-pad].reshape(image.shape)


def layered_deconvolution(blurry_uint8: np.ndarray, radius_map_px: np.ndarray, regularisation: float) -> np.ndarray:
    """Deblur with the map: per pixel, the Wiener deconvolution by its own (nearest) level.

    Args:
        blurry_uint8: uint8 H×W×3.
        radius_map_px: float H×W, radius in pixels; 0 (in focus) keeps the pixel.
        regularisation: Wiener noise-to-signal power ratio.

    Returns:
        uint8 H×W×3.
    """
    blurry = blurry_uint8.astype(np.float64) / 255.0
    radius_map_px = np.asarray(radius_map_px, dtype=np.float32)
    if radius_map_px.shape != blurry.shape[:2]:
        raise ValueError(f"map shape {radius_map_px.shape} does not match image {blurry.shape[:2]}")
    in_focus = quantize_radius_px(radius_map_px) == 0
    index = level_index(radius_map_px)
    restored = blurry.copy()
    for level in np.unique(index[~in_focus]):
        chosen = (index == level) & ~in_focus
        restored[chosen] = wiener_deconvolve(blurry, float(RADIUS_LEVELS[level]), regularisation)[chosen]
    return np.clip(np.rint(restored * 255.0), 0, 255).astype(np.uint8)


def choose_regularisation(
    samples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
    candidates: Sequence[float] = REGULARISATION_CANDIDATES,
) -> tuple[float, dict[float, float]]:
    """Pick the regularisation with the best mean PSNR.

    Args:
        samples: (blurry uint8 H×W×3, radius map px H×W, sharp uint8 H×W×3) from the training split.
        candidates: values to try.

    Returns:
        (best value, {value: mean PSNR in dB}).
    """
    samples = list(samples)
    if not samples:
        raise ValueError("choose_regularisation needs at least one sample")
    scores = {
        value: float(
            np.mean([psnr(sharp, layered_deconvolution(blurry, radius, value)) for blurry, radius, sharp in samples])
        )
        for value in candidates
    }
    return max(scores, key=scores.get), scores
