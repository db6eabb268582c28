"""Defocus blur by disk PSFs, the image-formation model of SPEC §3 (numpy + OpenCV).

It lives in the runtime because ``svbr demo`` blurs its own scene with it;
training and calibration import it from here (``training.synthesis``
re-exports it), so the PSF has one definition.

Conventions: images are uint8 H×W×3 (any channel order: every channel is
blurred alike); radius maps are float H×W in pixels of that image, 0 meaning
in focus.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.constants import RADIUS_LEVELS_PX as RADIUS_LEVELS

# Quadrature points per pixel width when integrating the disk's coverage.
_COVERAGE_SAMPLES_PER_PX = 512


def disk_kernel(radius_px: float) -> np.ndarray:
    """Anti-aliased pillbox PSF of the given radius.

    Each tap is the fraction of that pixel's unit square lying inside the
    circle of radius ``radius_px`` centred on the kernel centre, normalised
    so that the kernel sums to 1. The coverage of a pixel column is the
    integral over x of the chord length clipped to the pixel's y-range,
    evaluated by 1-D midpoint quadrature (accurate to ~1e-6 of a pixel).

    Args:
        radius_px: disk radius in pixels, > 0.

    Returns:
        float32 array of shape (2h+1, 2h+1), h = ceil(radius_px + 0.5) - 1.
    """
    if not np.isfinite(radius_px) or radius_px <= 0:
        raise ValueError(f"disk radius must be a positive number of pixels, got {radius_px!r}")
    half = int(np.ceil(radius_px + 0.5)) - 1
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    n = _COVERAGE_SAMPLES_PER_PX
    # x sample positions inside each pixel column: shape (columns, n).
    x = offsets[:, None] + (np.arange(n) + 0.5)[None, :] / n - 0.5
    chord = np.sqrt(np.clip(radius_px**2 - x**2, 0.0, None))
    # Overlap of [-chord, chord] with each pixel row [y-0.5, y+0.5]: (rows, columns, n).
    low = np.maximum(offsets[:, None, None] - 0.5, -chord[None])
    high = np.minimum(offsets[:, None, None] + 0.5, chord[None])
    coverage = np.clip(high - low, 0.0, None).mean(axis=2)
    # Quadrature runs along x only; averaging with the transpose restores the
    # disk's exact x/y symmetry.
    coverage = 0.5 * (coverage + coverage.T)
    return (coverage / coverage.sum()).astype(np.float32)


def quantize_radius_px(radius_px: np.ndarray, zero_at_or_below: float = 0.25) -> np.ndarray:
    """Snap radii to the nearest of ``RADIUS_LEVELS``; radii ``<= zero_at_or_below`` become 0.

    Args:
        radius_px: float array of any shape, pixels.
        zero_at_or_below: radii at or below this are in focus (0). The default is
            the midpoint between 0 and the smallest level.

    Returns:
        float32 array of the same shape with values in {0} ∪ RADIUS_LEVELS.
    """
    radius_px = np.asarray(radius_px, dtype=np.float32)
    index = level_index(radius_px)
    snapped = RADIUS_LEVELS[index]
    return np.where(radius_px <= zero_at_or_below, np.float32(0), snapped).astype(np.float32)


def level_index(radius_px: np.ndarray) -> np.ndarray:
    """Index (0..22) of the nearest radius level for every element (ties go down)."""
    steps = (np.asarray(radius_px, dtype=np.float64) - RADIUS_LEVELS[0]) / (RADIUS_LEVELS[1] - RADIUS_LEVELS[0])
    return np.clip(np.ceil(steps - 0.5), 0, len(RADIUS_LEVELS) - 1).astype(np.int64)


def _checked_blur_inputs(image_uint8_hw3: np.ndarray, radius_map_px_hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 H×W×3 image, float32 H×W radii), or a ValueError naming what is wrong with them."""
    image = np.asarray(image_uint8_hw3)
    radius = np.asarray(radius_map_px_hw, dtype=np.float32)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if radius.shape != image.shape[:2]:
        raise ValueError(f"radius map shape {radius.shape} does not match image {image.shape[:2]}")
    if not np.all(np.isfinite(radius)) or radius.min() < 0:
        raise ValueError("radius map must be finite and non-negative")
    return image, radius


def blur(image_uint8_hw3: np.ndarray, radius_map_px_hw: np.ndarray) -> np.ndarray:
    """Spatially varying disk blur (the paper's gather model).

    Every output pixel is the dot product of its input neighbourhood with the
    disk of its own radius, rounded to the nearest level; radius 0 copies the
    pixel. Implemented as one full-image convolution per level that occurs
    in the map and a per-pixel selection. Borders replicate. The result is
    rounded to uint8 as a camera would deliver it.

    Args:
        image_uint8_hw3: uint8 array (H, W, 3).
        radius_map_px_hw: float array (H, W), radius in pixels, >= 0.

    Returns:
        uint8 array (H, W, 3), the blurred image.
    """
    image, radius = _checked_blur_inputs(image_uint8_hw3, radius_map_px_hw)

    in_focus = quantize_radius_px(radius) == 0
    index = level_index(radius)
    source = image.astype(np.float32)
    result = source.copy()
    for level in np.unique(index[~in_focus]):
        chosen = (index == level) & ~in_focus
        kernel = disk_kernel(float(RADIUS_LEVELS[level]))
        blurred = cv2.filter2D(source, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        result[chosen] = blurred[chosen]
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)


def blur_large(image_uint8_hw3: np.ndarray, radius_map_px_hw: np.ndarray, step_px: float = 0.25) -> np.ndarray:
    """:func:`blur` for radii of any size (the large-blur benchmarks and tests; ``blur`` stops at 6 px).

    The same gather model and disk PSF, with radii rounded to multiples of ``step_px``
    (ties down) instead of the 23 trained levels; radii ≤ ``step_px / 2`` are in focus.
    Borders replicate; the result is rounded to uint8.
    """
    image, radius = _checked_blur_inputs(image_uint8_hw3, radius_map_px_hw)
    index = np.ceil(radius.astype(np.float64) / step_px - 0.5).astype(np.int64)
    source = image.astype(np.float32)
    result = source.copy()
    for level in np.unique(index[index > 0]):
        chosen = index == level
        blurred = cv2.filter2D(source, -1, disk_kernel(float(level * step_px)), borderType=cv2.BORDER_REPLICATE)
        result[chosen] = blurred[chosen]
    return np.clip(np.rint(result), 0, 255).astype(np.uint8)
