"""Synthetic spatially varying defocus blur for training (SPEC §3), numpy + OpenCV only.

Training and calibration share this module, so it must never import torch.
The PSF and the blur itself are in ``runtime.defocus`` (the demo needs them
too) and re-exported here; this module adds the 13 blur-map families.
"""

from __future__ import annotations

import numpy as np

from runtime.constants import RADIUS_LEVELS_PX
from runtime.defocus import blur, disk_kernel, level_index, quantize_radius_px

__all__ = [
    "RADIUS_LEVELS",
    "MAP_FAMILIES",
    "MAPS_PER_IMAGE",
    "blur",
    "disk_kernel",
    "draw_map",
    "level_index",
    "quantize_radius_px",
    "sample_blur_maps",
]

#: The 23 disk radii (px) of the point spread functions: 0.5, 0.75, ..., 6.0.
RADIUS_LEVELS: np.ndarray = RADIUS_LEVELS_PX

#: Number of blur-map families and random draws per family (SPEC §3).
MAP_FAMILIES: tuple[str, ...] = (
    "ramp_left_right",
    "ramp_top_bottom",
    "ramp_right_left",
    "ramp_bottom_top",
    "stairs_left_right",
    "stairs_top_bottom",
    "stairs_right_left",
    "stairs_bottom_top",
    "uniform",
    "product_inc_inc",
    "product_dec_dec",
    "product_inc_dec",
    "product_dec_inc",
)
DRAWS_PER_FAMILY: int = 3
MAPS_PER_IMAGE: int = len(MAP_FAMILIES) * DRAWS_PER_FAMILY

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


def draw_map(family: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One blur map of the given family (one of ``MAP_FAMILIES``): float32 H×W radii in px on the levels."""
    if family not in MAP_FAMILIES:
        raise ValueError(f"unknown map family {family!r}; families: {', '.join(MAP_FAMILIES)}")
    return quantize_radius_px(_draw_raw_map(family, height, width, rng))


def _draw_raw_map(family: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
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
            maps[family_index * DRAWS_PER_FAMILY + draw] = draw_map(family, height, width, rng)
    return maps
