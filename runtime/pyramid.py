"""Blur-adaptive multi-scale deblurring: which scale each region is deblurred at, and the blend (pure numpy/OpenCV).

SVBR-Net is trained for disk radii up to ``MAX_RADIUS_PX`` (6 px). Defocus grows
with resolution, so a 12-24 MP photo holds far larger radii. Downscaling by 2
halves a radius, so level ``k`` of an image pyramid (scale ``2**-k``: 1, ½, ¼,
⅛, ...) brings radii up to ``6 · 2**k`` px into the trained range. Every pixel
gets soft weights over the levels from its radius ``r`` (px of the full image):

    u = log2(clip(r, 6, max_radius) / 6)            the level at which r reads exactly 6 px
    k = floor(u), t = u − k                          between level k and k + 1
    w[k + 1] = min(1, t / TRANSITION_OCTAVES), w[k] = 1 − w[k + 1], every other level 0

so radii ≤ 6 px have weight 1 on level 0 (full resolution), 12 px weight 1 on
level 1 (½), 24 px on level 2 (¼), 48 px on level 3 (⅛); the weights of a pixel sum to 1.

Each level ``k > 0`` that any pixel needs (:func:`level_plan`) is deblurred on
its own: the image is downscaled with ``INTER_AREA`` to :func:`level_size`, the
map likewise and multiplied by the scale, the exact tiled path runs, and the
*correction* (network output − level input) is kept at the level's size.
Level 0 is today's full-resolution pass; the output of a pixel is

    out = w[0] · net₀ + Σ_{k>0} w[k] · (input + upsample(correction_k))

with ``upsample`` bilinear (pixel centres aligned, edges clamped: OpenCV's
``INTER_LINEAR`` geometry, :func:`sample_bilinear`). Where ``w[0] == 1`` (every
radius ≤ 6 px) the output is ``net₀`` itself, bit for bit today's path.

Cost: level k has 4**-k of the pixels, so all coarser levels together add at
most 1/4 + 1/16 + 1/64 + ... < 1/3 of the full-resolution network work; a tile of level 0
whose centre has no pixel with ``w[0] > 0`` skips the network altogether.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from runtime.constants import MAX_RADIUS_PX

#: ``Deblurrer(max_radius_px=...)``'s default: levels 1, ½, ¼, ⅛ (radii up to 6 · 8 px).
DEFAULT_MAX_RADIUS_PX: float = 48.0
#: The largest ``max_radius_px`` accepted: six levels, down to 1/32 scale.
LIMIT_MAX_RADIUS_PX: float = MAX_RADIUS_PX * 2**5
#: Width (octaves of radius) of the hand-over from one level to the next coarser one: a pixel of radius
#: 6 · 2**(k + TRANSITION_OCTAVES) px is entirely on level k + 1. Measured on 6 validation photos with 4-18 px
#: fields (true maps, PSNR / SSIM; blurry 18.83 / 0.391): 1 octave 20.43 / 0.492, ½ 20.91 / 0.527,
#: ¼ 21.14 / 0.539, ⅛ 21.24 / 0.545, 0.05 21.29 / 0.549 (the network deblurs a radius just above 6 px
#: better at half scale than clipped at full scale); ⅛ keeps a soft seam between regions.
TRANSITION_OCTAVES: float = 0.125
#: Rows per strip when scanning a full-size map (bounded memory for 24 MP maps).
STRIP_ROWS: int = 256


def validate_max_radius(max_radius_px: object) -> float:
    """``max_radius_px`` as a float; ``ValueError`` naming it unless a finite number in [6, 192]."""
    if isinstance(max_radius_px, (bool, np.bool_)) or not isinstance(
        max_radius_px, (int, float, np.integer, np.floating)
    ):
        raise ValueError(
            f"max_radius_px must be a number of px in [{MAX_RADIUS_PX:g}, {LIMIT_MAX_RADIUS_PX:g}], "
            f"got {max_radius_px!r}"
        )
    value = float(max_radius_px)
    if not (math.isfinite(value) and MAX_RADIUS_PX <= value <= LIMIT_MAX_RADIUS_PX):
        raise ValueError(
            f"max_radius_px must be a finite number of px in [{MAX_RADIUS_PX:g}, "
            f"{LIMIT_MAX_RADIUS_PX:g}], got {max_radius_px!r}"
        )
    return value


def level_count(max_radius_px: float) -> int:
    """Levels needed so that ``max_radius_px`` reads at most 6 px on the coarsest: 1 for 6 px, 4 for 48 px."""
    return 1 + max(0, math.ceil(math.log2(max_radius_px / MAX_RADIUS_PX) - 1e-9))


def level_scale(level: int) -> float:
    """Scale of level ``level`` relative to the full image: 1, 0.5, 0.25, ..."""
    return 2.0**-level


def level_size(height: int, width: int, level: int) -> tuple[int, int]:
    """(rows, columns) of level ``level`` of an H×W image: the size × 2**-level, rounded, at least 1."""
    scale = level_scale(level)
    return max(1, round(height * scale)), max(1, round(width * scale))


def level_coordinate(radius_px: np.ndarray, max_radius_px: float) -> np.ndarray:
    """float32 ``log2(clip(r, 6, max_radius_px) / 6)``: 0 for r ≤ 6 px, 1 at 12 px, 2 at 24 px, ...

    The log is taken in float64 and rounded once: numpy's float32 ``log2`` is a CPU-dependent SIMD routine
    (1-2 ulp off for ~7 % of ratios on AVX-512), which would make the weights, and the C++ runtime's parity
    with them, depend on the machine.
    """
    clipped = np.clip(np.asarray(radius_px, dtype=np.float32), np.float32(MAX_RADIUS_PX), np.float32(max_radius_px))
    ratio = clipped / np.float32(MAX_RADIUS_PX)
    return np.log2(ratio.astype(np.float64)).astype(np.float32)


def level_weights(radius_px: np.ndarray, max_radius_px: float, transition: float = TRANSITION_OCTAVES) -> np.ndarray:
    """Per-pixel weights of every level: float32 ``(level_count, *radius_px.shape)``, summing to 1 per pixel.

    Args:
        radius_px: radii in px of the full image, any shape.
        max_radius_px: the limit (radii above it count as it).
        transition: octaves over which a pixel moves from level k to k + 1 (0 < transition ≤ 1).
    """
    if not 0 < transition <= 1:
        raise ValueError(f"transition must be in (0, 1] octaves, got {transition}")
    levels = level_count(max_radius_px)
    u = level_coordinate(radius_px, max_radius_px)
    lower = np.minimum(np.floor(u), levels - 1).astype(np.int64)
    coarse = np.clip((u - lower) / np.float32(transition), 0.0, 1.0).astype(np.float32)
    coarse = np.where(lower >= levels - 1, np.float32(0), coarse)
    weights = np.zeros((levels, *u.shape), np.float32)
    for level in range(levels):
        here = lower == level
        weights[level] = np.where(here, np.float32(1) - coarse, weights[level])
        if level + 1 < levels:
            weights[level + 1] = np.where(here, coarse, weights[level + 1])
    return weights


def level_plan(radius_px: np.ndarray, max_radius_px: float, transition: float = TRANSITION_OCTAVES) -> tuple[int, ...]:
    """The levels any pixel of the map has a positive weight on, ascending (``(0,)``: today's single pass).

    The map is scanned in strips of ``STRIP_ROWS`` rows, so a 24 MP map needs no full-size temporary.
    """
    radius_px = np.asarray(radius_px)
    largest = float(radius_px.max(initial=0.0))
    if max_radius_px <= MAX_RADIUS_PX or not math.isfinite(largest) or largest <= MAX_RADIUS_PX:
        return (0,)  # (a map with NaN or infinite radii is refused by the caller's validation)
    used: set[int] = set()
    flat = radius_px.reshape(radius_px.shape[0], -1) if radius_px.ndim >= 2 else radius_px.reshape(1, -1)
    for first in range(0, flat.shape[0], STRIP_ROWS):
        weights = level_weights(flat[first : first + STRIP_ROWS], max_radius_px, transition)
        used.update(int(level) for level in np.nonzero(weights.reshape(len(weights), -1).max(axis=1) > 0)[0])
    return tuple(sorted(used))


def downscale(array: np.ndarray, level: int) -> np.ndarray:
    """Level ``level`` of an H×W or H×W×C array (``INTER_AREA``; same dtype)."""
    if level == 0:
        return array
    height, width = level_size(array.shape[0], array.shape[1], level)
    return cv2.resize(np.ascontiguousarray(array), (width, height), interpolation=cv2.INTER_AREA)


def level_map(radius_px: np.ndarray, level: int) -> np.ndarray:
    """The radius map of level ``level``: downscaled (``INTER_AREA``) and in px of that level (× 2**-level)."""
    small = downscale(np.asarray(radius_px, dtype=np.float32), level)
    return (small * np.float32(level_scale(level))).astype(np.float32)


def bilinear_taps(positions: np.ndarray, size_out: int, size_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source taps of output ``positions`` when an axis of ``size_in`` samples is resized to ``size_out``.

    Pixel centres are aligned (``src = (p + 0.5) · size_in / size_out − 0.5``, clamped to the axis), as
    OpenCV's ``INTER_LINEAR``. Returns (lower index, upper index, float32 weight of the upper one).
    """
    source = (np.asarray(positions, dtype=np.float64) + 0.5) * (size_in / size_out) - 0.5
    source = np.clip(source, 0.0, size_in - 1)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, size_in - 1)
    return lower, upper, (source - lower).astype(np.float32)


def sample_bilinear(small: np.ndarray, rows: np.ndarray, columns: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling of ``small`` (h×w×C) to H×W, evaluated only at ``rows`` × ``columns`` of the H×W grid.

    Separable: rows first, then columns; float32. Equals ``cv2.resize(small, (W, H), INTER_LINEAR)[rows][:, columns]``
    up to float rounding, without ever making the H×W array.
    """
    top, bottom, row_weight = bilinear_taps(rows, height, small.shape[0])
    left, right, column_weight = bilinear_taps(columns, width, small.shape[1])
    extra = (None,) * (small.ndim - 2)
    row_weight = row_weight[(slice(None), None, *extra)]
    column_weight = column_weight[(None, slice(None), *extra)]
    upper, lower = small[top], small[bottom]
    blended_rows = upper + row_weight * (lower - upper)
    left_values, right_values = blended_rows[:, left], blended_rows[:, right]
    return (left_values + column_weight * (right_values - left_values)).astype(np.float32)


def blend(level0: np.ndarray, image: np.ndarray, weights: np.ndarray, corrections: dict[int, np.ndarray]) -> np.ndarray:
    """Combine the levels at some pixels: ``w[0] · level0 + Σ_k w[k] · (image + corrections[k])``.

    Args:
        level0: float32 h×w×C, the full-resolution network output in image units.
        image: h×w×C, the input at the same pixels (any real dtype).
        weights: float32 (levels, h, w) from :func:`level_weights`.
        corrections: level k > 0 -> float32 h×w×C, its correction upsampled to these pixels.
            Levels without an entry must have zero weight here.

    Returns:
        float32 h×w×C; exactly ``level0`` wherever ``w[0] == 1``.
    """
    base = image.astype(np.float32)
    result = level0 * weights[0][..., None]
    for level, correction in corrections.items():
        result = result + weights[level][..., None] * (base + correction)
    return np.where((weights[0] == 1)[..., None], level0, result).astype(np.float32)
