"""Synthetic spatially varying defocus blur (SPEC §3), numpy + OpenCV only.

Training and calibration share this module, so it must never import torch.

Conventions: images are uint8 H×W×3 (any channel order: every channel is
blurred alike); radius maps are float H×W in pixels of that image, 0 meaning
in focus.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.constants import RADIUS_LEVELS_PX

#: The 23 disk radii (px) of the point spread functions: 0.5, 0.75, ..., 6.0.
RADIUS_LEVELS: np.ndarray = RADIUS_LEVELS_PX

#: Number of blur-map families and random draws per family (SPEC §3).
MAP_FAMILIES: tuple[str, ...] = (
    "ramp_left_right", "ramp_top_bottom", "ramp_right_left", "ramp_bottom_top",
    "stairs_left_right", "stairs_top_bottom", "stairs_right_left", "stairs_bottom_top",
    "uniform",
    "product_inc_inc", "product_dec_dec", "product_inc_dec", "product_dec_inc",
)
DRAWS_PER_FAMILY: int = 3
MAPS_PER_IMAGE: int = len(MAP_FAMILIES) * DRAWS_PER_FAMILY

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
    steps = (np.asarray(radius_px, dtype=np.float64) - RADIUS_LEVELS[0]) / 0.25
    return np.clip(np.ceil(steps - 0.5), 0, len(RADIUS_LEVELS) - 1).astype(np.int64)


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
    image = np.asarray(image_uint8_hw3)
    radius = np.asarray(radius_map_px_hw, dtype=np.float32)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if radius.shape != image.shape[:2]:
        raise ValueError(f"radius map shape {radius.shape} does not match image {image.shape[:2]}")
    if not np.all(np.isfinite(radius)) or radius.min() < 0:
        raise ValueError("radius map must be finite and non-negative")

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


# --- blur-map families -------------------------------------------------------


def _ramp_profile(length: int, rng: np.random.Generator) -> np.ndarray:
    """Increasing ramp along one axis: 0, then a linear band, then the end level held."""
    margin = max(1, int(round(0.29 * length)))
    band_start = int(rng.integers(0, margin))
    band_end = length - 1 - int(rng.integers(0, margin))
    start_level = RADIUS_LEVELS[rng.integers(1, 7)]
    end_level = RADIUS_LEVELS[rng.integers(len(RADIUS_LEVELS) - 6, len(RADIUS_LEVELS))]
    position = np.arange(length, dtype=np.float64)
    fraction = np.clip((position - band_start) / max(band_end - band_start, 1), 0.0, 1.0)
    profile = start_level + fraction * (end_level - start_level)
    profile[position < band_start] = 0.0
    return profile


def _staircase_profile(length: int, rng: np.random.Generator, decreasing: bool) -> np.ndarray:
    """Four flat steps of +2 levels; increasing starts in focus, decreasing at the top level."""
    step_length = max(1, int(round(0.15 * length)))
    first_step = int(rng.integers(0, max(1, int(round(0.40 * length)))))
    start_index = int(rng.integers(1, 16))
    step_indices = start_index + 2 * np.arange(4)
    if decreasing:
        step_indices = step_indices[::-1]
    step_of_position = np.clip((np.arange(length) - first_step) // step_length, 0, 3)
    profile = RADIUS_LEVELS[step_indices[step_of_position]].astype(np.float64)
    before = np.arange(length) < first_step
    profile[before] = RADIUS_LEVELS[step_indices.max()] if decreasing else 0.0
    return profile


def _along(profile: np.ndarray, height: int, width: int, axis: int, mirrored: bool) -> np.ndarray:
    if mirrored:
        profile = profile[::-1]
    return np.broadcast_to(profile[None, :] if axis == 1 else profile[:, None], (height, width))


def _draw_map(family: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    kind, _, direction = family.partition("_")
    if kind == "uniform":
        return np.full((height, width), RADIUS_LEVELS[rng.integers(0, len(RADIUS_LEVELS))])
    if kind == "product":
        horizontal_dir, vertical_dir = direction.split("_")
        horizontal = _along(_ramp_profile(width, rng), height, width, 1, horizontal_dir == "dec")
        vertical = _along(_ramp_profile(height, rng), height, width, 0, vertical_dir == "dec")
        return np.sqrt(horizontal * vertical)
    axis = 1 if direction in ("left_right", "right_left") else 0
    decreasing = direction in ("right_left", "bottom_top")
    length = width if axis == 1 else height
    if kind == "ramp":
        return _along(_ramp_profile(length, rng), height, width, axis, decreasing)
    # A decreasing staircase is generated descending along its own axis, then
    # laid out so that it descends in the family's direction.
    profile = _staircase_profile(length, rng, decreasing)
    return _along(profile, height, width, axis, False)


def sample_blur_maps(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the 39 blur maps of SPEC §3 for one image.

    Map ``3 * f + d`` is draw ``d`` of family ``MAP_FAMILIES[f]``.

    Args:
        height, width: map size in pixels (any size >= 1).
        rng: numpy random generator; the maps are a deterministic function of its state.

    Returns:
        float32 array (39, height, width) of radii in pixels, values in {0} ∪ RADIUS_LEVELS.
    """
    if height < 1 or width < 1:
        raise ValueError(f"map size must be positive, got {height}x{width}")
    maps = np.empty((MAPS_PER_IMAGE, height, width), dtype=np.float32)
    for family_index, family in enumerate(MAP_FAMILIES):
        for draw in range(DRAWS_PER_FAMILY):
            raw = _draw_map(family, height, width, rng)
            maps[family_index * DRAWS_PER_FAMILY + draw] = quantize_radius_px(raw)
    return maps
