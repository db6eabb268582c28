"""Blur-map estimation: the defocus disk radius of every pixel of an ordinary photo.

SVBR-Net is non-blind: it needs a blur map. ``estimate_blur_map`` makes one
from the photo alone with the edge-based estimator of Karaali & Jung 2018
("Edge-based defocus blur estimation with adaptive scale selection", IEEE TIP
27(3):1126-1137), written from the algorithm's description (design notes:
``../shared/research/blur-estimation.md``), not from the authors' GPL code:

1. Linearised luminance: BT.601 Y as MATLAB's ``rgb2ycbcr`` computes it, raised to 2.4.
2. Canny at 9 scales σc = 1, 1.5, ..., 5 with image-relative thresholds.
3. Reliable edges: detected at all 4 finest scales. Per edge pixel, the
   uninterrupted run of scales it survives picks the re-blur scale
   std2 = σc*/2 ∈ {1.25, ..., 2.5}; std1 = 1.
4. Two-scale gradient ratio R = |∇_std1| / |∇_std2| (derivatives of Gaussians)
   gives the Gaussian blur σ = √((R²·std1² − std2²) / (1 − R²)), capped at 5.
5. Connected-edge filter: along every 8-connected edge, a least-squares
   smoothing weighted by the number of scales the pixel is an edge at.
6. σ → disk radius by D'Andrès et al.'s conversion table (not an analytic
   disk model, which under-estimates large radii).
7. Domain-transform propagation to every pixel (normalised convolution with
   the recursive filter), guided by a pre-smoothed copy of the photo, at
   reduced resolution for large photos.
8. A calibration table (raw → radius, fitted on training-split photos), then
   clip to [0, 6] px and re-quantise to the 23 radius levels (≤ 0.5 px → 0).

That is ``method="table"``. The default, ``method="learned"`` (issue 10 item 6),
replaces steps 4b-6 and 8's calibration by a tiny per-edge regressor: an MLP
(numpy weights, 21 kB, ``runtime/models/blur_regressor.npz``, trained on
training-split photos by ``python -m training.blur_regressor``) maps 11
features of each reliable edge pixel to a disk radius; the rest is the same.
It lowered the validation dense-map MAE (see the README); the table method's
map is still propagated alongside (one shared filter pass) to detect blur
beyond 6 px, which the regressor, trained on 0-6 px, cannot show.

Large radii (issue 19, ``max_radius_px`` > 6, e.g. 48 as ``Deblurrer`` passes): the per-edge
measurement saturates near 5.5 px, so the photo is also measured on an image pyramid
(½, ¼, ⅛, ``INTER_AREA``) where radii shrink with the scale; each level's edges are calibrated
to px of the photo (``PYRAMID_CALIBRATION``, fitted on training photos), propagated into a dense
map, and per pixel the coarser level takes over where the finer one nears saturation
(``PYRAMID_HANDOVER_PX``, :func:`pyramid_dense`). A photo on which no pixel hands over (little
blur) gets exactly the single-level map; radii above 6 px are quantised to 0.25 px steps.

Deviations from the published algorithm, all deliberate: OpenCV's Canny (not
MATLAB's) with a floor on the high threshold so flat images yield no edges;
ratios R ≤ 1 (which the published code maps to σ = 0, "in focus", although
they mean "blurrier than measurable") are dropped as non-measurements;
large photos are estimated on a downscaled copy (``MAX_ESTIMATE_PIXELS``);
and step 8's calibration (``CALIBRATION_*``), because the table-converted
estimate reads low on natural photos.

numpy, OpenCV and SciPy only; never imports torch.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from runtime.constants import MAX_RADIUS_PX
from runtime.defocus import quantize_radius_px
from runtime.domain_transform import recursive_filter
from runtime.validation import validate_image

__all__ = [
    "estimate_blur_map",
    "raw_radius_map",
    "calibrate_radius_px",
    "sigma_to_radius_px",
    "edge_features",
    "predict_edge_radius_px",
    "NoEdgesWarning",
    "SaturatedEstimateWarning",
]

# --- parameters, with their source ---------------------------------------------

#: Step 1. BT.601 luma as MATLAB's ``rgb2ycbcr`` (Y = 16/255 + (65.481 R + 128.553 G + 24.966 B)/255 on
#: [0, 1] RGB), raised to γ = 2.4 for an approximately linear luminance (Karaali & Jung, blur_estimate_our.m l. 16-21).
LUMA_OFFSET: float = 16.0 / 255.0
LUMA_WEIGHTS_RGB: tuple[float, float, float] = (65.481 / 255.0, 128.553 / 255.0, 24.966 / 255.0)
LINEARISING_GAMMA: float = 2.4

#: Step 2. Canny scales σc = 1, 1.5, ..., 5 px (Karaali & Jung l. 11, 23-30).
CANNY_SCALES_PX: tuple[float, ...] = tuple(1.0 + 0.5 * i for i in range(9))
#: MATLAB ``edge(I, 'canny')`` thresholds: high = 70th percentile of the gradient magnitude, low = 0.4 × high.
CANNY_HIGH_PERCENTILE: float = 70.0
CANNY_LOW_FRACTION: float = 0.4
#: Floor on the high threshold (ours, not published): gradient magnitude in linear-luminance levels
#: (0..255) per px. Without it a flat or nearly flat photo turns noise into "edges" (MATLAB's
#: percentile rule always marks 30 % of the pixels). 1.0 rejects 8-bit quantisation and Gaussian
#: noise up to σ ≈ 2 levels on a flat grey image at the finest scale.
CANNY_MIN_HIGH_GRADIENT: float = 1.0
#: Step 3. Reliable edges are edges at all of the first 4 scales (σc = 1 ... 2.5) (Karaali & Jung l. 32-37).
RELIABLE_SCALES: int = 4

#: Step 4. Derivative-of-Gaussian scales: std1 = 1 (l. 12), std2 = 0.5·σc* (l. 49-62).
STD1_PX: float = 1.0
STD2_PER_CANNY_SCALE: float = 0.5
#: Gaussian σ cap (l. 100-101).
MAX_SIGMA_PX: float = 5.0

#: Step 5. Connected-edge filter weight γ (l. 111): minimise Σ(1+et)(x−s)² + γ Σ_{i~j}(x_i−x_j)².
EDGE_FILTER_GAMMA: float = 10.0

#: Step 6. D'Andrès, Salvador, Kochale & Süsstrunk 2016 (IEEE TIP 25(4)), ``convertion.mat`` (as
#: distributed with codeslake/DMENet evaluation/RTF): Gaussian σ (px) for each disk radius 0.5:0.25:6 px.
DANDRES_SIGMA_PX: tuple[float, ...] = (
    0.3,
    0.5,
    0.65,
    0.775,
    0.875,
    0.975,
    1.125,
    1.275,
    1.375,
    1.525,
    1.65,
    1.8,
    1.925,
    2.05,
    2.2,
    2.325,
    2.45,
    2.6,
    2.725,
    2.875,
    3.0,
    3.15,
    3.275,
)
DANDRES_RADIUS_PX: tuple[float, ...] = tuple(0.5 + 0.25 * i for i in range(23))
#: Beyond the table: the slope of its linear fit σ ≈ 0.532·r + 0.072 (research note §1.5).
DANDRES_SIGMA_PER_RADIUS: float = 0.532

#: Step 7. Guide pre-smoothing RF(I, σs = 7, σr = 0.5, 5 iterations) and propagation RF with
#: σs = min(H, W)/8, σr = 3.75, 5 iterations, on RGB in [0, 1] (Karaali & Jung l. 178,
#: EdgeAwareInterpolation.m l. 13-22; the same σs/σr as training.augment's DT scheme).
GUIDE_SIGMA_S_PX: float = 7.0
GUIDE_SIGMA_R: float = 0.5
PROPAGATION_SIGMA_S_DIVISOR: float = 8.0
PROPAGATION_SIGMA_R: float = 3.75
DT_ITERATIONS: int = 5
#: Propagation runs on an area-downsampled copy (integer factor) of at most this many pixels; the
#: dense result is upsampled bilinearly (research note §4.7: half resolution at 1.2 MP costs
#: +0.016 px MAE and saves ~2.7 s). Radii are not rescaled: the edge measurements stay full-resolution.
MAX_PROPAGATION_PIXELS: int = 500_000

#: Photos larger than this are estimated on an area-downscaled copy (memory and time bound, e.g. for
#: 24 MP); the radii are scaled back to the photo's pixels (÷ the downscale factor). Small radii
#: (below ~0.5 px × the factor) become undetectable there and read as in focus.
MAX_ESTIMATE_PIXELS: int = 4_000_000

#: Step 5-6, learned alternative (the default, ``method="learned"``; issue 10 item 6, research note §3.3-3.4):
#: a 11→64→64→1 ReLU MLP (numpy weights, ~20 kB) maps per-edge features straight to a disk radius
#: in place of the σ → table conversion. Features: log gradient-magnitude ratios (3×3 local max) at
#: ``REGRESSOR_SCALES_PX`` relative to σ = 1, the edge count and run length over the 9 Canny scales
#: (÷ 9), the log σ = 1 magnitude and the table radius ÷ 6. Trained on TRAINING-split photos under
#: uniform blur with noise and JPEG augmentation by ``python -m training.blur_regressor``.
REGRESSOR_PATH: Path = Path(__file__).resolve().parent / "models" / "blur_regressor.npz"
REGRESSOR_SCALES_PX: tuple[float, ...] = (0.5, 0.71, 1.41, 2.0, 2.83, 4.0, 5.66)
#: Per-edge regressor outputs are clipped to [0, this] px before the edge filter and propagation.
REGRESSOR_MAX_RADIUS_PX: float = 9.0
#: ``estimate_blur_map``'s per-edge measurement: the learned regressor or the published σ + table.
METHODS: tuple[str, ...] = ("learned", "table")

#: Step 8a. Calibration of the dense estimate (ours, not published): the raw map, converted by
#: D'Andrès's table, reads low on natural photos (neighbouring edges interfere with the two-scale
#: ratio; research note §1.5). A monotone table raw → radius, fitted on TRAINING-split photos only
#: (never the validation photos the benchmark measures on) by ``python -m benchmarks.estimate
#: --parts fit``: for each uniform blur r, the median raw value. Empty = no calibration. Used by
#: ``method="table"`` only (the learned regressor is trained to output radii). Measured on
#: validation photos (6 × 13 map families): dense MAE 0.72 → 0.63 px, bias −0.37 → −0.07 px.
CALIBRATION_RAW_PX: tuple[float, ...] = (
    0.43,
    0.86,
    1.145,
    1.741,
    2.258,
    2.777,
    3.209,
    3.638,
    4.021,
    4.391,
    4.722,
    5.03,
)
CALIBRATION_RADIUS_PX: tuple[float, ...] = (0, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6)

#: Step 8b. Re-quantisation: radii ≤ 0.5 px are in focus (the levels start at 0.5).
ZERO_AT_OR_BELOW_PX: float = 0.5
#: Warn when more than this share of the pixels is estimated at the 6-px limit (or above).
SATURATION_WARNING_FRACTION: float = 0.2

#: Smallest image side accepted (the 9-scale Canny needs room).
MIN_SIDE_PX: int = 16

#: Large radii (issue 19, ``max_radius_px`` > 6). The per-edge measurement saturates near 5.5 px (the
#: regressor is trained on 0-6 px), so the photo is also measured on an image pyramid (levels ½, ¼, ⅛, ...,
#: ``INTER_AREA``), where radii shrink with the scale: level k's edges are measured, calibrated to px of the
#: photo (``PYRAMID_CALIBRATION``) and propagated at that level like level 0's, giving a dense map D_k.
#: Per pixel, level k + 1 takes over from level k (linearly) as D_k rises from ``PYRAMID_HANDOVER_PX[0]``·2^k
#: to ``[1]``·2^k px (level k nears saturation) or D_{k+1} rises from ``[2]``·2^k to ``[3]``·2^k px
#: (level k + 1 sees blur beyond level k's range, e.g. where level k found no edges in the blurry region).
#: Where no pixel hands over, the map is exactly the single-level one (small blur: bit-identical).
PYRAMID_HANDOVER_PX: tuple[float, float, float, float] = (4.5, 5.0, 6.0, 7.0)
PYRAMID_SUPPORT_PX: tuple[float, float] = (3.5, 4.5)
#: Levels whose shorter side would be below this are not measured.
PYRAMID_MIN_SIDE_PX: int = 32
#: Per level k ≥ 1: the regressor's reading (px of level k) → radius (px of the estimated image), linear
#: between points, slope 2^k beyond. Fitted on TRAINING-split photos (never the validation photos measured)
#: by ``python -m benchmarks.large_blur --parts fit``: for each uniform blur r, the median reading.
PYRAMID_CALIBRATION: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {
    1: ((0.288, 1.078, 2.342, 3.327, 4.219, 4.862, 5.225), (0, 2, 4, 6, 8, 10, 12)),
    2: (
        (0.426, 0.648, 1.086, 1.593, 2.252, 2.812, 3.258, 3.731, 4.184, 4.824, 5.194),
        (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24),
    ),
    3: (
        (0.422, 0.486, 0.632, 0.841, 1.096, 1.357, 1.598, 1.899, 2.242, 2.775, 3.194, 3.63, 4.108, 4.801, 5.148),
        (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48),
    ),
}
#: Radii above 6 px are quantised to multiples of this (below: the 23 trained levels, as always).
LARGE_RADIUS_STEP_PX: float = 0.25


class NoEdgesWarning(UserWarning):
    """The photo has no reliable edge: the estimate is the all-zero (in-focus) map."""


class SaturatedEstimateWarning(UserWarning):
    """Part of the photo is estimated at the 6-px limit: it is blurrier than SVBR-Net's trained range."""


# --- public API -------------------------------------------------------------------


def estimate_blur_map(
    image: np.ndarray,
    *,
    channel_order: str = "bgr",
    timings: dict[str, float] | None = None,
    method: str = "learned",
    max_radius_px: float = MAX_RADIUS_PX,
) -> np.ndarray:
    """Estimate the defocus disk radius of every pixel of a photo.

    Args:
        image: H×W×3 photo, uint8 or float32 in [0, 1]; channels in ``channel_order``.
        channel_order: ``"bgr"`` (OpenCV's order, the default) or ``"rgb"``.
        timings: if a dict is given, the seconds spent per stage are stored in it
            (``downscale``, ``edges``, ``measure``, ``regressor`` (learned only), ``edge_filter``, ``propagate``,
            ``pyramid`` (``max_radius_px`` > 6), ``finish``, ``total``).
        method: per-edge measurement: ``"learned"`` (default; the small regressor,
            ``REGRESSOR_PATH``) or ``"table"`` (the published two-scale ratio σ, D'Andrès's
            table and the calibration table ``CALIBRATION_*``). The coarser pyramid levels
            (``max_radius_px`` > 6) always use the regressor.
        max_radius_px: largest radius returned, 6-192 px. 6 (the default): the single-level
            estimator, radii up to 6 px. Larger: radii up to it, measured on an image pyramid
            (see the module docstring); ``Deblurrer`` passes its own (48 by default).

    Returns:
        float32 H×W radii in px of this image, each 0 (in focus) or one of the 23
        levels 0.5, 0.75, ..., 6, or (``max_radius_px`` > 6) a multiple of 0.25 px up to
        ``max_radius_px``. Fallback: a photo with no reliable edge (e.g. a
        flat one) gives the all-zero map and a :class:`NoEdgesWarning` — an
        edge-based estimator that sees no edge knows nothing about the blur.
        When more than 20 % of the pixels reach the limit (6 px, or ``max_radius_px``), a
        :class:`SaturatedEstimateWarning` says so.

    Raises:
        ValueError: naming the problem with the input (as ``Deblurrer.deblur``),
            or an image smaller than 16×16.
    """
    validate_image(image, channel_order)
    from runtime.pyramid import validate_max_radius

    max_radius_px = validate_max_radius(max_radius_px)
    clock = _Clock(timings)
    maps = _raw_maps(image, channel_order, clock, method, max_radius_px)
    if maps is None:
        warnings.warn(
            "no reliable edge found: the blur cannot be measured, so the estimated blur map is all zero "
            "(in focus); pass a blur map instead",
            NoEdgesWarning,
            stacklevel=2,
        )
        clock.lap("finish", total=True)
        return np.zeros(image.shape[:2], np.float32)
    dense, table_dense, large = maps
    if large:  # the pyramid's map: radii up to max_radius_px
        saturated = float(np.mean(dense > max_radius_px - 0.125))
        if saturated > SATURATION_WARNING_FRACTION:
            warnings.warn(
                f"{100 * saturated:.0f} % of the photo is estimated at max_radius_px={max_radius_px:g} px or above: "
                f"raise max_radius_px (up to 192 px) or downscale the photo before estimating and deblurring",
                SaturatedEstimateWarning,
                stacklevel=2,
            )
        result = quantize_large_radius_px(np.clip(dense, 0.0, max_radius_px))
        clock.lap("finish", total=True)
        return result
    table_dense = calibrate_radius_px(table_dense)
    if method == "table":
        dense = table_dense
    # Saturation is judged on the table method's map, propagated alongside: the learned regressor was
    # trained on radii up to 6 px only, so it squeezes larger blur into the range instead of showing it.
    saturated = float(np.mean(table_dense > MAX_RADIUS_PX - 0.125))
    if saturated > SATURATION_WARNING_FRACTION:
        hint = (
            "downscale the photo (e.g. by 2) before estimating and deblurring"
            if max_radius_px == MAX_RADIUS_PX
            else "its pyramid levels found too few edges to measure it"
        )
        warnings.warn(
            f"{100 * saturated:.0f} % of the photo is estimated at the {MAX_RADIUS_PX:g}-px limit: it is blurrier "
            f"than SVBR-Net's trained range (up to {MAX_RADIUS_PX:g} px); {hint}",
            SaturatedEstimateWarning,
            stacklevel=2,
        )
    result = quantize_radius_px(np.clip(dense, 0.0, MAX_RADIUS_PX), zero_at_or_below=ZERO_AT_OR_BELOW_PX)
    clock.lap("finish", total=True)
    return result


def quantize_large_radius_px(radius_px: np.ndarray) -> np.ndarray:
    """Radii ≤ 6 px to the 23 levels (≤ 0.5 px → 0) as always; larger ones to multiples of ``LARGE_RADIUS_STEP_PX``."""
    radius_px = np.asarray(radius_px, dtype=np.float32)
    small = quantize_radius_px(np.minimum(radius_px, MAX_RADIUS_PX), zero_at_or_below=ZERO_AT_OR_BELOW_PX)
    step = LARGE_RADIUS_STEP_PX
    large = (np.ceil(radius_px.astype(np.float64) / step - 0.5) * step).astype(np.float32)
    return np.where(radius_px > MAX_RADIUS_PX, np.maximum(large, np.float32(MAX_RADIUS_PX)), small).astype(np.float32)


def raw_radius_map(
    image: np.ndarray, *, channel_order: str = "bgr", clock: _Clock | None = None, method: str = "table"
) -> np.ndarray | None:
    """Steps 1-7 without the final calibration and quantisation (``estimate_blur_map``'s core).

    ``method``: ``"table"`` (σ by the two-scale ratio, D'Andrès's table) or ``"learned"`` (the regressor).

    Returns:
        float32 H×W dense radius in px of this image, not calibrated, not
        clipped, not quantised; ``None`` when the photo has no reliable edge.

    Raises:
        ValueError: as :func:`estimate_blur_map`.
    """
    maps = _raw_maps(image, channel_order, clock or _Clock(None), method, MAX_RADIUS_PX)
    return None if maps is None else maps[0]


def _raw_maps(
    image: np.ndarray, channel_order: str, clock: _Clock, method: str, max_radius_px: float
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(dense map of ``method``, dense map of the table method (uncalibrated), from the pyramid?), or None without edges.

    With ``max_radius_px`` > 6 the coarser levels are measured too (:func:`pyramid_dense`); where any pixel
    hands over to them, the first map is the pyramid's (radii up to ``max_radius_px``, calibrated, final) and
    the flag is True; otherwise both maps are exactly the single-level ones.
    """
    validate_image(image, channel_order)
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; methods: {', '.join(METHODS)}")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE_PX:
        raise ValueError(
            f"image must be at least {MIN_SIDE_PX}×{MIN_SIDE_PX} px to estimate blur, got {width}×{height}"
        )
    rgb = image
    scale = min(1.0, math.sqrt(MAX_ESTIMATE_PIXELS / (height * width)))
    if scale < 1.0:  # resized in the input's dtype: a 24 MP photo is never copied to float at full size
        size = (max(MIN_SIDE_PX, round(width * scale)), max(MIN_SIDE_PX, round(height * scale)))
        rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA)
        scale = size[0] / width
    rgb = rgb[..., ::-1] if channel_order == "bgr" else rgb
    rgb = rgb.astype(np.float32) / np.float32(255) if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    clock.lap("downscale")

    edges = edge_measurements(rgb, method, clock)
    dense = None
    if edges is not None:
        mask, learned, table = edges
        dense = propagate(rgb, mask, np.stack([learned, table], axis=-1) if method == "learned" else table)
        clock.lap("propagate")
    if max_radius_px > MAX_RADIUS_PX:
        level0 = None if dense is None else (dense[..., 0] if method == "learned" else calibrate_radius_px(dense))
        large = pyramid_dense(rgb, level0, max_radius_px * scale)
        clock.lap("pyramid")
        if large is not None:
            if scale < 1.0:
                large = cv2.resize(large, (width, height), interpolation=cv2.INTER_LINEAR) / np.float32(scale)
            return large, large, True
    if dense is None:
        return None
    if scale < 1.0:
        dense = cv2.resize(dense, (width, height), interpolation=cv2.INTER_LINEAR) / np.float32(scale)
    return (dense[..., 0], dense[..., 1], False) if method == "learned" else (dense, dense, False)


def pyramid_levels(height: int, width: int, max_radius_px: float) -> list[int]:
    """The coarser levels (1, 2, ...) measured for radii up to ``max_radius_px`` (px of this image)."""
    levels = []
    level = 1
    while (
        PYRAMID_HANDOVER_PX[0] * 2 ** (level - 1) < max_radius_px
        and min(height, width) * 2.0**-level >= PYRAMID_MIN_SIDE_PX
    ):
        levels.append(level)
        level += 1
    return levels


def calibrate_level_px(reading_px: np.ndarray, level: int) -> np.ndarray:
    """A level-``level`` regressor reading (px of that level) → radius in px of the full image (``PYRAMID_CALIBRATION``)."""
    factor = np.float32(2.0**level)
    reading = np.asarray(reading_px, dtype=np.float32)
    if level not in PYRAMID_CALIBRATION:
        return reading * factor
    table_raw = np.asarray(PYRAMID_CALIBRATION[level][0], dtype=np.float32)
    table_radius = np.asarray(PYRAMID_CALIBRATION[level][1], dtype=np.float32)
    out = np.interp(reading, table_raw, table_radius).astype(np.float32)
    out = np.where(reading > table_raw[-1], table_radius[-1] + factor * (reading - table_raw[-1]), out)
    out = np.where(reading < table_raw[0], table_radius[0] + factor * (reading - table_raw[0]), out)
    return np.maximum(out, 0.0).astype(np.float32)


def level_edge_readings(rgb: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The learned regressor's readings at the reliable edges of pyramid level ``level`` of ``rgb``.

    Returns (rows, columns, reading in px of that level) of the level's edge pixels, or None without edges.
    """
    small = _level_image(rgb, level)
    edges = edge_measurements(small, "learned")
    if edges is None:
        return None
    mask, learned, _ = edges
    rows, columns = np.nonzero(mask)
    return rows, columns, learned[mask]


def _level_image(rgb: np.ndarray, level: int) -> np.ndarray:
    if level == 0:
        return rgb
    height, width = rgb.shape[:2]
    size = (max(1, round(width * 2.0**-level)), max(1, round(height * 2.0**-level)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((values - np.float32(low)) / np.float32(high - low), 0.0, 1.0).astype(np.float32)


def pyramid_dense(rgb: np.ndarray, dense0: np.ndarray | None, max_radius_px: float) -> np.ndarray | None:
    """The dense map with large radii: level 0's map ``dense0`` handed over to coarser levels' (``PYRAMID_*``).

    Args:
        rgb: float32 H×W×3, the (estimation-sized) photo.
        dense0: level 0's dense map (px of ``rgb``; the single-level estimate), or None when level 0 has no edge.
        max_radius_px: the largest radius wanted, in px of ``rgb``.

    Returns:
        float32 H×W radii in px of ``rgb``; ``None`` when no pixel hands over to a coarser level
        (then the single-level map stands, unchanged).
    """
    height, width = rgb.shape[:2]
    a, b, c, d = PYRAMID_HANDOVER_PX
    maps: list[np.ndarray | None] = [dense0]
    for level in pyramid_levels(height, width, max_radius_px):
        small = _level_image(rgb, level)
        edges = edge_measurements(small, "learned")
        if edges is None:
            break
        mask, learned, _ = edges
        dense = propagate(small, mask, np.where(mask, calibrate_level_px(learned, level), np.float32(0)))
        maps.append(cv2.resize(dense, (width, height), interpolation=cv2.INTER_LINEAR))
    if len(maps) < 2:
        return None
    # From the coarsest level down: result_k = D_k + g_{k+1} · (result_{k+1} − D_k).
    result = maps[-1]
    handed_over = False
    for level in range(len(maps) - 2, -1, -1):
        finer, coarser = maps[level], maps[level + 1]
        scale = float(2**level)
        gate = _ramp(coarser, c * scale, d * scale)
        if finer is None:  # level 0 without edges: the coarser level alone
            result, handed_over = result, True
            continue
        support = _ramp(finer, PYRAMID_SUPPORT_PX[0] * scale, PYRAMID_SUPPORT_PX[1] * scale)
        gate = np.maximum(gate * support, _ramp(finer, a * scale, b * scale))
        if level == 0:
            handed_over = bool(gate.max() > 0)
        result = np.where(gate > 0, finer + gate * (result - finer), finer).astype(np.float32)
    return np.minimum(result, np.float32(max_radius_px)) if handed_over else None


def edge_measurements(
    rgb: np.ndarray, method: str, clock: _Clock | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray] | None:
    """Steps 1-6 on float32 RGB in [0, 1]: the reliable edge pixels and their radii, before propagation.

    Returns:
        (mask, learned, table): bool H×W edge pixels; float32 H×W radii in px of this image at the mask
        (0 elsewhere) by the regressor (``None`` for ``method="table"``) and by σ + D'Andrès's table
        (not calibrated), both after the connected-edge filter; ``None`` when there is no reliable edge.
    """
    clock = clock or _Clock(None)
    gray = luminance(rgb)
    run_length, edge_count = multiscale_edges(gray)
    clock.lap("edges")
    mask, sigma = measure_sigma(gray, run_length)
    clock.lap("measure")
    if not mask.any():
        return None
    learned = None
    if method == "learned":
        learned = np.zeros(mask.shape, np.float32)
        learned[mask] = predict_edge_radius_px(edge_features(gray, run_length, edge_count, mask, sigma))
        clock.lap("regressor")
        learned = filter_connected_edges(mask, learned, edge_count)
    table = sigma_to_radius_px(filter_connected_edges(mask, sigma, edge_count))
    clock.lap("edge_filter")
    return mask, learned, table


def calibrate_radius_px(raw_px: np.ndarray) -> np.ndarray:
    """Step 8a: the dense raw estimate → radius by ``CALIBRATION_RAW_PX`` → ``CALIBRATION_RADIUS_PX``.

    Linear between the table's points, slope 1 beyond its ends (so saturation stays visible).
    """
    raw = np.asarray(raw_px, dtype=np.float32)
    table_raw = np.asarray(CALIBRATION_RAW_PX, dtype=np.float32)
    table_radius = np.asarray(CALIBRATION_RADIUS_PX, dtype=np.float32)
    if table_raw.size == 0:
        return raw
    out = np.interp(raw, table_raw, table_radius).astype(np.float32)
    out = np.where(raw > table_raw[-1], table_radius[-1] + (raw - table_raw[-1]), out)
    out = np.where(raw < table_raw[0], table_radius[0] + (raw - table_raw[0]), out)
    return np.maximum(out, 0.0).astype(np.float32)


def sigma_to_radius_px(sigma_px: np.ndarray) -> np.ndarray:
    """Gaussian σ (px) → disk radius (px) by D'Andrès's table, linear between entries.

    Below the first entry (σ 0.3 ↔ r 0.5) the line through the origin; beyond
    the last (σ 3.275 ↔ r 6) the slope of the table's linear fit.
    """
    sigma = np.asarray(sigma_px, dtype=np.float64)
    table_sigma = np.array(DANDRES_SIGMA_PX)
    table_radius = np.array(DANDRES_RADIUS_PX)
    radius = np.interp(sigma, table_sigma, table_radius)
    radius = np.where(sigma < table_sigma[0], sigma * (table_radius[0] / table_sigma[0]), radius)
    radius = np.where(
        sigma > table_sigma[-1], table_radius[-1] + (sigma - table_sigma[-1]) / DANDRES_SIGMA_PER_RADIUS, radius
    )
    return np.maximum(radius, 0.0).astype(np.float32)


# --- the stages -------------------------------------------------------------------


def luminance(rgb: np.ndarray) -> np.ndarray:
    """float32 H×W×3 RGB in [0, 1] → float32 H×W linearised luma in [0, 1] (step 1)."""
    r, g, b = LUMA_WEIGHTS_RGB
    luma = LUMA_OFFSET + r * rgb[..., 0] + g * rgb[..., 1] + b * rgb[..., 2]
    return np.power(np.clip(luma, 0.0, 1.0), LINEARISING_GAMMA).astype(np.float32)


def _gaussian_derivative_kernels(sigma: float, half: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1-D Gaussian G and derivative −x/σ²·G (unit-mass 2-D Gaussian's factors), sampled on ±half px."""
    if half is None:
        half = 2 * math.ceil(2.0 * sigma) + 1  # Karaali & Jung's window half-size 2⌈2σ⌉+1
    x = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2)) / (math.sqrt(2.0 * math.pi) * sigma)
    return g.astype(np.float32), (-x / sigma**2 * g).astype(np.float32)


def gradients(gray: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Derivative-of-Gaussian gradients (gx, gy) at scale ``sigma`` (borders replicate)."""
    g, dg = _gaussian_derivative_kernels(sigma)
    gx = cv2.sepFilter2D(gray, cv2.CV_32F, dg, g, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.sepFilter2D(gray, cv2.CV_32F, g, dg, borderType=cv2.BORDER_REPLICATE)
    return gx, gy


#: Fixed-point scale of the gradients handed to cv2.Canny (int16): 1/64 level per px resolution;
#: a derivative-of-Gaussian gradient is at most 255/√(2π) ≈ 102 levels/px at σ = 1, so no overflow.
_CANNY_FIXED_POINT: float = 64.0


def multiscale_edges(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canny at the 9 scales (step 2).

    Returns:
        (run_length, edge_count): uint8 H×W each. ``run_length`` is the number of
        consecutive scales, from the finest, at which the pixel is an edge;
        ``edge_count`` (Karaali's ``et``) the number of scales at which it is one.
    """
    run_length = np.zeros(gray.shape, np.uint8)
    edge_count = np.zeros(gray.shape, np.uint8)
    alive = np.ones(gray.shape, bool)
    level_scale = 255.0 * _CANNY_FIXED_POINT
    step = max(1, int(math.sqrt(gray.size / 250_000)))  # percentile on a ≤ 0.25 MP subsample
    for sigma in CANNY_SCALES_PX:
        gx, gy = gradients(gray, sigma)
        magnitude = cv2.magnitude(gx[::step, ::step], gy[::step, ::step])
        high = max(float(np.percentile(magnitude, CANNY_HIGH_PERCENTILE)) * 255.0, CANNY_MIN_HIGH_GRADIENT)
        dx = np.clip(np.rint(gx * level_scale), -32767, 32767).astype(np.int16)
        dy = np.clip(np.rint(gy * level_scale), -32767, 32767).astype(np.int16)
        edges = (
            cv2.Canny(
                dx, dy, CANNY_LOW_FRACTION * high * _CANNY_FIXED_POINT, high * _CANNY_FIXED_POINT, L2gradient=True
            )
            > 0
        )
        edge_count += edges
        alive &= edges
        run_length += alive
    return run_length, edge_count


def measure_sigma(gray: np.ndarray, run_length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two-scale gradient ratio at the reliable edge pixels (steps 3-4).

    Returns:
        (mask, sigma): bool H×W, the edge pixels with a valid measurement;
        float32 H×W, Gaussian σ in px there (0 elsewhere), capped at ``MAX_SIGMA_PX``.
    """
    reliable = run_length >= RELIABLE_SCALES
    sigma = np.zeros(gray.shape, np.float32)
    mask = np.zeros(gray.shape, bool)
    if not reliable.any():
        return mask, sigma
    gx1, gy1 = gradients(gray, STD1_PX)
    m1_all = cv2.magnitude(gx1, gy1)
    for run in np.unique(run_length[reliable]):
        rows, cols = np.nonzero(run_length == run)
        std2 = STD2_PER_CANNY_SCALE * CANNY_SCALES_PX[int(run) - 1]
        gx2, gy2 = gradients(gray, std2)
        m1 = m1_all[rows, cols].astype(np.float64)
        m2 = np.hypot(gx2[rows, cols], gy2[rows, cols]).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = m1 / m2
            variance = (ratio**2 * STD1_PX**2 - std2**2) / (1.0 - ratio**2)
        valid = np.isfinite(ratio) & (ratio > 1.0) & (m2 > 0)
        sharp = valid & (ratio >= std2 / STD1_PX)  # at least as sharp as an ideal step: in focus
        value = np.where(sharp, 0.0, np.sqrt(np.clip(variance, 0.0, None)))
        value = np.minimum(np.nan_to_num(value, nan=0.0), MAX_SIGMA_PX)
        sigma[rows[valid], cols[valid]] = value[valid]
        mask[rows[valid], cols[valid]] = True
    return mask, sigma


def edge_features(
    gray: np.ndarray, run_length: np.ndarray, edge_count: np.ndarray, mask: np.ndarray, sigma: np.ndarray
) -> np.ndarray:
    """Per-edge features of the learned regressor, float32 (N, 11) in the mask's raster order (see ``REGRESSOR_*``)."""
    kernel = np.ones((3, 3), np.uint8)

    def local_max_magnitude(scale: float) -> np.ndarray:
        gx, gy = gradients(gray, scale)
        return cv2.dilate(cv2.magnitude(gx, gy), kernel)[mask]

    reference = local_max_magnitude(STD1_PX) + np.float32(1e-7)
    log_reference = np.log(reference)
    columns = [np.log(local_max_magnitude(scale) + np.float32(1e-7)) - log_reference for scale in REGRESSOR_SCALES_PX]
    columns += [
        edge_count[mask].astype(np.float32) / 9,
        run_length[mask].astype(np.float32) / 9,
        log_reference,
        sigma_to_radius_px(sigma[mask]) / np.float32(MAX_RADIUS_PX),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _regressor(path: Path = REGRESSOR_PATH) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"blur regressor weights missing: {path}; regenerate them with `python -m training.blur_regressor` "
            "or use estimate_blur_map(..., method='table')"
        )
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def predict_edge_radius_px(features: np.ndarray) -> np.ndarray:
    """The regressor's disk radius (px) for each row of :func:`edge_features`, clipped to [0, 9]."""
    weights = _regressor()
    hidden = (features - weights["mean"]) / weights["std"]
    layers = sum(1 for key in weights if key.startswith("w"))
    for layer in range(layers):
        hidden = hidden @ weights[f"w{layer}"] + weights[f"b{layer}"]
        if layer < layers - 1:
            hidden = np.maximum(hidden, 0.0)
    return np.clip(hidden[:, 0], 0.0, REGRESSOR_MAX_RADIUS_PX).astype(np.float32)


def filter_connected_edges(mask: np.ndarray, sigma: np.ndarray, edge_count: np.ndarray) -> np.ndarray:
    """Least-squares smoothing along 8-connected edges (step 5).

    Solves (diag(1 + et) + 2γ·L) x = (1 + et)·s over all edge pixels at once
    (L the graph Laplacian of the 8-neighbour edge graph, so every connected
    edge is smoothed on its own).

    Returns:
        float32 H×W, the filtered σ at the mask's pixels (0 elsewhere).
    """
    height, width = mask.shape
    index = np.full(mask.shape, -1, np.int64)
    count = int(mask.sum())
    index[mask] = np.arange(count)
    first, second = [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        if dx >= 0:
            a, b = index[: height - dy, : width - dx], index[dy:, dx:]
        else:
            a, b = index[: height - dy, -dx:], index[dy:, : width + dx]
        linked = (a >= 0) & (b >= 0)
        first.append(a[linked])
        second.append(b[linked])
    i = np.concatenate(first)
    j = np.concatenate(second)
    weights = 1.0 + edge_count[mask].astype(np.float64)
    values = sigma[mask].astype(np.float64)
    if i.size == 0:
        return sigma
    ones = np.ones(i.size)
    adjacency = scipy.sparse.coo_matrix((ones, (i, j)), shape=(count, count))
    adjacency = (adjacency + adjacency.T).tocsr()
    laplacian = scipy.sparse.diags(np.asarray(adjacency.sum(axis=1)).ravel()) - adjacency
    system = (scipy.sparse.diags(weights) + 2.0 * EDGE_FILTER_GAMMA * laplacian).tocsc()
    solution = scipy.sparse.linalg.spsolve(system, weights * values)
    filtered = np.zeros(mask.shape, np.float32)
    filtered[mask] = solution
    return filtered


def propagate(rgb: np.ndarray, mask: np.ndarray, radius: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Domain-transform propagation of the edge radii to every pixel (step 7).

    Normalised convolution RF(r·w) / RF(w), w the edge mask, guided by the
    pre-smoothed photo; several radius channels share one filter pass.

    Args:
        rgb: float32 H×W×3 in [0, 1] (the guide).
        mask: bool H×W, the measured pixels (at least one).
        radius: float32 H×W (or H×W×K), radius in px at the mask's pixels.
        weight: float32 H×W confidence of each measurement (0 off the mask); None: 1 on the mask.

    Returns:
        float32 of ``radius``'s shape, the dense radius in px (not quantised).
    """
    height, width = mask.shape
    channels = radius if radius.ndim == 3 else radius[..., None]
    factor = max(1, math.ceil(math.sqrt(height * width / MAX_PROPAGATION_PIXELS)))
    weight = mask.astype(np.float32) if weight is None else weight.astype(np.float32)
    stacked = np.concatenate([channels * weight[..., None], weight[..., None]], axis=-1).astype(np.float32)
    if factor > 1:
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        stacked = np.stack(
            [
                cv2.resize(np.ascontiguousarray(stacked[..., k]), size, interpolation=cv2.INTER_AREA)
                for k in range(stacked.shape[-1])
            ],
            axis=-1,
        )
    guide = recursive_filter(rgb, rgb, GUIDE_SIGMA_S_PX, GUIDE_SIGMA_R, DT_ITERATIONS)
    sigma_s = min(stacked.shape[:2]) / PROPAGATION_SIGMA_S_DIVISOR
    filtered = recursive_filter(stacked, guide, sigma_s, PROPAGATION_SIGMA_R, DT_ITERATIONS)
    numerator, denominator = filtered[..., :-1], filtered[..., -1:]
    reached = np.broadcast_to(denominator > 1e-200, numerator.shape)
    fallback = np.median(channels[mask], axis=0)  # weight underflow across extreme edges: the median measurement
    dense = np.where(reached, numerator / np.where(reached, denominator, 1.0), fallback).astype(np.float32)
    if factor > 1:
        dense = np.stack(
            [
                cv2.resize(np.ascontiguousarray(dense[..., k]), (width, height), interpolation=cv2.INTER_LINEAR)
                for k in range(dense.shape[-1])
            ],
            axis=-1,
        )
    return dense if radius.ndim == 3 else dense[..., 0]


class _Clock:
    """Stage timer that writes into an optional dict."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.start = self.last = time.perf_counter()

    def lap(self, stage: str, total: bool = False) -> None:
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[stage] = now - self.last
        self.last = now
        if total:
            self.timings["total"] = now - self.start
