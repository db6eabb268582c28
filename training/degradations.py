"""Camera-realistic degradations: a sharp sRGB photo → the blurry photo a camera would deliver.

The paper's pipeline (``training.synthesis``) applies an exact disk PSF to
gamma-encoded values and stops there. Real defocus happens in linear light,
through apertures that are not exact disks, with occlusion at depth edges,
and the camera then adds sensor noise, clips highlights and compresses.
This module builds that chain from small named stages, in the order light
meets them (``../shared/research/real-degradations.md``, "A pipeline for this
project")::

    srgb_to_linear → boost_highlights → layered_defocus (psf_kernel, composite_layer)
        → add_sensor_noise (linear) → clip → linear_to_srgb → quantise → add_srgb_noise → jpeg

The sharp target goes through the same curve (``srgb_to_linear`` → highlights
→ clip → ``linear_to_srgb``), so the only differences the network must undo
are the blur, the noise and the compression. Every random range lives in
``CameraRanges``; :func:`draw_camera` samples one :class:`CameraPlan` from a
generator, and :func:`degrade` renders it, so a batch stays a pure function of
(seed, step) as in ``training.photos``.

Radius labels: a PSF that is not an exact disk is labelled with the radius of
the disk of the same second moment (E[x² + y²] = R²/2), as the research note
recommends; a Gaussian of σ = R/2 and a disk of radius R then share a label.

numpy + OpenCV only; this module must never import torch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from runtime.constants import RADIUS_LEVELS_PX
from runtime.defocus import disk_kernel, level_index, quantize_radius_px

# --- parameter ranges: the one place they are set -------------------------------------------------


@dataclass(frozen=True)
class CameraRanges:
    """Probabilities and ranges of every stage (uniform unless said)."""

    #: Share of crops left to the paper's pipeline (exact disk on sRGB, no noise): the clean
    #: synthetic skill must survive the fine-tune.
    paper_probability: float = 0.2
    #: PSF shapes and their probabilities.
    psf_shapes: tuple[str, ...] = ("disk", "soft_disk", "polygon", "annulus", "gaussian", "light_field")
    psf_weights: tuple[float, ...] = (0.30, 0.20, 0.15, 0.10, 0.10, 0.15)
    #: Soft disk: width (px) of the tanh edge (BokehMe's soft disk).
    soft_edge_px: tuple[float, float] = (0.3, 1.2)
    #: Polygonal aperture: number of blades (inclusive).
    polygon_blades: tuple[int, int] = (5, 9)
    #: Annulus ("donut", bright rim of a dual-pixel or mirror lens): inner radius / outer radius,
    #: and the brightness inside the inner radius relative to the rim.
    annulus_inner_ratio: tuple[float, float] = (0.3, 0.7)
    annulus_inner_level: tuple[float, float] = (0.1, 0.7)
    #: Light-field refocusing: sub-aperture views per side of the square grid clipped to the disk.
    light_field_views: tuple[int, int] = (3, 9)
    #: Occlusion: probability of foreground layers, their count (inclusive), the area each covers,
    #: and the probability that a foreground layer is in focus (a sharp subject before a blurred background).
    layer_probability: float = 0.4
    layer_count: tuple[int, int] = (1, 2)
    layer_area: tuple[float, float] = (0.15, 0.5)
    layer_in_focus_probability: float = 0.35
    #: Highlights: probability, the linear level above which a pixel counts as a light source,
    #: and the gain it gets (the light the sensor clipped, RSBlur / BokehMe).
    highlight_probability: float = 0.25
    highlight_threshold: float = 0.85
    highlight_gain: tuple[float, float] = (1.5, 4.0)
    #: Noise: probabilities of (clean, Poisson–Gaussian in linear light, Gaussian in sRGB).
    noise_weights: tuple[float, float, float] = (0.3, 0.45, 0.25)
    #: Poisson–Gaussian: log-uniform shot variance; read variance on Brooks et al.'s line
    #: log λ_read = 2.18 log λ_shot + 1.20 + N(0, 0.26²). λ_shot = 2e-3 is σ ≈ 6 levels at mid grey.
    shot_variance: tuple[float, float] = (1e-5, 2e-3)
    #: Gaussian noise after the ISP (σ in 8-bit levels) and the share of it drawn on luma only.
    srgb_noise_sigma_levels: tuple[float, float] = (0.5, 8.0)
    srgb_noise_gray_probability: float = 0.3
    #: JPEG: probability and quality (inclusive).
    jpeg_probability: float = 0.4
    jpeg_quality: tuple[int, int] = (60, 100)


CAMERA_RANGES = CameraRanges()


def camera_ranges(overrides: dict[str, object] | None = None) -> CameraRanges:
    """``CAMERA_RANGES`` with some fields replaced (a training config's ``camera_overrides``; lists → tuples)."""
    overrides = dict(overrides or {})
    unknown = set(overrides) - set(CameraRanges.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown camera_overrides {sorted(unknown)}; known: {', '.join(CameraRanges.__dataclass_fields__)}"
        )
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in overrides.items()}
    ranges = replace(CAMERA_RANGES, **values)
    if not np.isclose(sum(ranges.psf_weights), 1.0) or not np.isclose(sum(ranges.noise_weights), 1.0):
        raise ValueError("camera_overrides: psf_weights and noise_weights must each sum to 1")
    return ranges


#: Brooks et al. (2019): read-noise variance as a function of shot-noise variance.
READ_NOISE_SLOPE, READ_NOISE_INTERCEPT, READ_NOISE_SPREAD = 2.18, 1.20, 0.26

#: Supersampling of the PSF rasteriser (samples per pixel per axis).
PSF_SUPERSAMPLING: int = 8

#: Radius (px) at which a shape's size-to-second-moment factor is measured (small renderings are
#: dominated by the pixel grid).
SECOND_MOMENT_REFERENCE_PX: float = 4.0

#: How far (px) beyond a crop the defocus of its pixels reads: the widest PSF of the widest
#: level (a Gaussian of σ = 3 px truncated at 3σ, or a soft disk's tail).
CAMERA_MARGIN_PX: int = 12


# --- tone curve ---------------------------------------------------------------------------------


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 decoding: sRGB values in [0, 1] → linear light, float32, same shape."""
    srgb = np.asarray(srgb, dtype=np.float32)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 encoding: linear light in [0, 1] → sRGB values in [0, 1], float32 (input clipped)."""
    linear = np.clip(np.asarray(linear, dtype=np.float32), 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


def quantise(srgb: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] → uint8, rounded as a camera writes it."""
    return np.clip(np.rint(np.asarray(srgb) * 255.0), 0, 255).astype(np.uint8)


# --- PSF shapes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsfShape:
    """One aperture shape; the parameters a kind does not use keep their defaults."""

    kind: str = "disk"
    soft_edge_px: float = 0.5
    blades: int = 6
    rotation_rad: float = 0.0
    inner_ratio: float = 0.5
    inner_level: float = 0.3
    views: int = 5


def _aperture(shape: PsfShape, x: np.ndarray, y: np.ndarray, outer_px: float) -> np.ndarray:
    """Intensity of the aperture image at offsets (x, y) px for an outer radius of ``outer_px``."""
    r = np.hypot(x, y)
    if shape.kind == "soft_disk":
        return 0.5 + 0.5 * np.tanh((outer_px - r) / max(shape.soft_edge_px, 1e-3) * 2.0)
    if shape.kind == "polygon":
        # A regular polygon with its vertices on the circle: the distance to the nearest edge line.
        sector = 2 * np.pi / shape.blades
        angle = np.mod(np.arctan2(y, x) - shape.rotation_rad, sector) - sector / 2
        return (r * np.cos(angle) <= outer_px * np.cos(sector / 2)).astype(np.float64)
    if shape.kind == "annulus":
        inside = (r <= outer_px).astype(np.float64)
        return inside * np.where(r < shape.inner_ratio * outer_px, shape.inner_level, 1.0)
    raise ValueError(f"no aperture function for PSF kind {shape.kind!r}")


def _rasterise(shape: PsfShape, outer_px: float) -> np.ndarray:
    """The shape at ``outer_px``, averaged over ``PSF_SUPERSAMPLING``² samples per pixel, normalised."""
    half = int(np.ceil(outer_px + 2 * shape.soft_edge_px * (shape.kind == "soft_disk"))) + 1
    s = PSF_SUPERSAMPLING
    offsets = (np.arange((2 * half + 1) * s) + 0.5) / s - half - 0.5
    x, y = np.meshgrid(offsets, offsets)
    fine = _aperture(shape, x, y, outer_px)
    kernel = fine.reshape(2 * half + 1, s, 2 * half + 1, s).mean(axis=(1, 3))
    return kernel / kernel.sum()


def _light_field_kernel(views: int, outer_px: float) -> np.ndarray:
    """Shift-and-add refocusing: one point per sub-aperture view inside the disk, splatted bilinearly."""
    grid = np.linspace(-1.0, 1.0, views) if views > 1 else np.zeros(1)
    u, v = np.meshgrid(grid, grid)
    inside = u**2 + v**2 <= 1.0 + 1e-9
    points_x, points_y = u[inside] * outer_px, v[inside] * outer_px
    half = int(np.ceil(outer_px)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1))
    for px, py in zip(points_x + half, points_y + half):
        x0, y0 = int(np.floor(px)), int(np.floor(py))
        fx, fy = px - x0, py - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < kernel.shape[0] and 0 <= x0 + dx < kernel.shape[1]:
                    kernel[y0 + dy, x0 + dx] += wy * wx
    return kernel / kernel.sum()


def second_moment_px2(kernel: np.ndarray) -> float:
    """E[x² + y²] of a centred, normalised kernel, in px²."""
    half_y, half_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    y, x = np.mgrid[-half_y : half_y + 1, -half_x : half_x + 1]
    return float(np.sum(kernel * (x**2 + y**2)) / np.sum(kernel))


def psf_kernel(shape: PsfShape, radius_px: float) -> np.ndarray:
    """The PSF of ``shape`` whose second moment equals that of the disk of radius ``radius_px``.

    Args:
        shape: aperture kind and its parameters.
        radius_px: the label: the equivalent disk radius in px, > 0.

    Returns:
        float32 (2h+1)×(2h+1) kernel summing to 1. ``disk`` is ``runtime.defocus.disk_kernel``
        itself, so a camera pipeline with disk PSFs matches the paper's PSF exactly.
    """
    if not np.isfinite(radius_px) or radius_px <= 0:
        raise ValueError(f"PSF radius must be a positive number of pixels, got {radius_px!r}")
    if shape.kind == "disk":
        return disk_kernel(radius_px)
    if shape.kind == "gaussian":
        sigma = radius_px / 2.0
        half = int(np.ceil(3 * sigma))
        g = cv2.getGaussianKernel(2 * half + 1, sigma, cv2.CV_64F)
        return (g @ g.T).astype(np.float32)

    factor = _size_factor(shape, max(float(radius_px), SECOND_MOMENT_REFERENCE_PX))
    return _render(shape, float(radius_px * factor)).astype(np.float32)


def _render(shape: PsfShape, outer_px: float) -> np.ndarray:
    """The shape at outer radius ``outer_px`` (not the disk or Gaussian, which have closed forms)."""
    if shape.kind == "light_field":
        return _light_field_kernel(shape.views, outer_px)
    return _rasterise(shape, outer_px)


@functools.lru_cache(maxsize=256)
def _size_factor(shape: PsfShape, reference_px: float) -> float:
    """Outer radius per px of label, measured on a rendering of ``reference_px``.

    Second moments scale with the square of the size, so one rendering large enough for the pixel
    grid not to matter gives the factor; a crop asks for it once per level below the reference
    radius, all of which share it.
    """
    return float(np.sqrt(reference_px**2 / 2.0 / second_moment_px2(_render(shape, reference_px))))


def draw_psf_shape(rng: np.random.Generator, ranges: CameraRanges = CAMERA_RANGES) -> PsfShape:
    """A random aperture: kind by ``ranges.psf_weights``, then that kind's parameters."""
    kind = ranges.psf_shapes[int(rng.choice(len(ranges.psf_shapes), p=np.asarray(ranges.psf_weights)))]
    return PsfShape(
        kind=kind,
        soft_edge_px=float(rng.uniform(*ranges.soft_edge_px)),
        blades=int(rng.integers(ranges.polygon_blades[0], ranges.polygon_blades[1] + 1)),
        rotation_rad=float(rng.uniform(0, 2 * np.pi)),
        inner_ratio=float(rng.uniform(*ranges.annulus_inner_ratio)),
        inner_level=float(rng.uniform(*ranges.annulus_inner_level)),
        views=int(rng.integers(ranges.light_field_views[0], ranges.light_field_views[1] + 1)),
    )


# --- defocus in linear light ---------------------------------------------------------------------


def defocus(linear: np.ndarray, radius_px: np.ndarray, shape: PsfShape) -> np.ndarray:
    """Spatially varying blur of a linear image: each pixel gathers with the PSF of its own radius level.

    Args:
        linear: float32 H×W×C linear light.
        radius_px: float H×W radii (px), snapped to the 23 levels as ``runtime.defocus.blur`` does.
        shape: the aperture.

    Returns:
        float32 H×W×C; in-focus pixels (radius ≤ 0.25 px) are copied. Borders replicate.
    """
    in_focus = quantize_radius_px(radius_px) == 0
    index = level_index(radius_px)
    result = np.array(linear, dtype=np.float32, copy=True)
    for level in np.unique(index[~in_focus]):
        chosen = (index == level) & ~in_focus
        kernel = psf_kernel(shape, float(RADIUS_LEVELS_PX[level]))
        result[chosen] = cv2.filter2D(linear, -1, kernel, borderType=cv2.BORDER_REPLICATE)[chosen]
    return result


def composite_layer(
    background_blurred: np.ndarray, foreground: np.ndarray, alpha: np.ndarray, radius_px: float, shape: PsfShape
) -> np.ndarray:
    """A foreground layer of one radius laid over an already rendered background ("over" with blurred α).

    The layer's premultiplied colour α·F and its coverage α are blurred by the same PSF, so a
    defocused foreground bleeds over the background behind its edge, and an in-focus one cuts a
    sharp silhouette into a blurred background (Xin et al.'s multiplane image, one plane).

    Args:
        background_blurred: float32 H×W×C, everything behind this layer, already defocused.
        foreground: float32 H×W×C linear colour of the layer.
        alpha: float32 H×W coverage in [0, 1].
        radius_px: the layer's radius (px); ≤ 0.25 px is in focus.
        shape: the aperture.
    """
    premultiplied = foreground * alpha[..., None]
    if quantize_radius_px(np.float32(radius_px)) > 0:
        kernel = psf_kernel(shape, float(quantize_radius_px(np.float32(radius_px))))
        alpha = cv2.filter2D(alpha, -1, kernel, borderType=cv2.BORDER_REPLICATE)
        premultiplied = cv2.filter2D(premultiplied, -1, kernel, borderType=cv2.BORDER_REPLICATE)
    return (1.0 - alpha[..., None]) * background_blurred + premultiplied


def random_mask(height: int, width: int, area: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random blob covering about ``area`` of the frame: float32 H×W coverage in [0, 1].

    A coarse Gaussian field, upsampled and thresholded at the matching quantile, with a
    one-pixel anti-aliased edge (object silhouettes are smooth at the scale of a pixel).
    """
    coarse = rng.standard_normal((max(2, height // 24), max(2, width // 24))).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    mask = (field > np.quantile(field, 1.0 - area)).astype(np.float32)
    return cv2.GaussianBlur(mask, (0, 0), 0.7)


# --- the sensor and the ISP ----------------------------------------------------------------------


def boost_highlights(linear: np.ndarray, threshold: float, gain: float) -> np.ndarray:
    """Light sources brighter than the sensor can record: pixels above ``threshold`` × ``gain``.

    Blurred, they spread into bright discs; the later clip keeps the sharp target at white.
    """
    bright = linear.max(axis=-1, keepdims=True) > threshold
    return np.where(bright, linear * gain, linear).astype(np.float32)


def add_sensor_noise(
    linear: np.ndarray, shot_variance: float, read_variance: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson–Gaussian sensor noise in linear light: y = x + N(0, λ_shot·x + λ_read), per channel."""
    variance = shot_variance * np.clip(linear, 0.0, None) + read_variance
    return (linear + rng.standard_normal(linear.shape).astype(np.float32) * np.sqrt(variance)).astype(np.float32)


def add_srgb_noise(srgb_uint8: np.ndarray, sigma_levels: float, gray: bool, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``sigma_levels`` (8-bit levels) on the delivered image, as left by an ISP."""
    shape = srgb_uint8.shape[:2] + ((1,) if gray else (srgb_uint8.shape[2],))
    noise = rng.standard_normal(shape).astype(np.float32) * sigma_levels
    return np.clip(np.rint(srgb_uint8.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def jpeg(rgb_uint8: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip at ``quality`` (OpenCV's encoder, 4:2:0); RGB in, RGB out."""
    ok, encoded = cv2.imencode(
        ".jpg", np.ascontiguousarray(rgb_uint8[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].copy()


# --- one draw of the whole chain ----------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A foreground layer: colour from photo ``photo_index``, a random silhouette, one radius."""

    photo_index: int
    radius_px: float
    area: float
    mask_seed: int


@dataclass(frozen=True)
class CameraPlan:
    """Every random choice of one degraded sample (see :func:`draw_camera`)."""

    psf: PsfShape = field(default_factory=PsfShape)
    layers: tuple[Layer, ...] = ()
    highlight_gain: float | None = None  # None: no boosted highlights
    shot_variance: float | None = None  # None: no sensor noise
    read_variance: float = 0.0
    srgb_noise_sigma_levels: float | None = None  # None: no noise after the ISP
    srgb_noise_gray: bool = False
    jpeg_quality: int | None = None  # None: no compression
    noise_seed: int = 0


def draw_camera(rng: np.random.Generator, photo_count: int, ranges: CameraRanges = CAMERA_RANGES) -> CameraPlan:
    """Sample every stage's parameters from ``ranges`` (a fixed number of draws per stage)."""
    psf = draw_psf_shape(rng, ranges)
    layers: tuple[Layer, ...] = ()
    if rng.random() < ranges.layer_probability:
        count = int(rng.integers(ranges.layer_count[0], ranges.layer_count[1] + 1))
        layers = tuple(
            Layer(
                photo_index=int(rng.integers(photo_count)),
                radius_px=0.0
                if rng.random() < ranges.layer_in_focus_probability
                else float(RADIUS_LEVELS_PX[int(rng.integers(len(RADIUS_LEVELS_PX)))]),
                area=float(rng.uniform(*ranges.layer_area)),
                mask_seed=int(rng.integers(2**31)),
            )
            for _ in range(count)
        )
    highlight_gain = float(rng.uniform(*ranges.highlight_gain)) if rng.random() < ranges.highlight_probability else None
    noise_kind = int(rng.choice(3, p=np.asarray(ranges.noise_weights)))
    shot = read = sigma = None
    if noise_kind == 1:
        shot = float(np.exp(rng.uniform(*np.log(ranges.shot_variance))))
        read = float(
            np.exp(READ_NOISE_SLOPE * np.log(shot) + READ_NOISE_INTERCEPT + rng.normal(0.0, READ_NOISE_SPREAD))
        )
    elif noise_kind == 2:
        sigma = float(rng.uniform(*ranges.srgb_noise_sigma_levels))
    gray = bool(rng.random() < ranges.srgb_noise_gray_probability)
    quality = (
        int(rng.integers(ranges.jpeg_quality[0], ranges.jpeg_quality[1] + 1))
        if rng.random() < ranges.jpeg_probability
        else None
    )
    return CameraPlan(
        psf=psf,
        layers=layers,
        highlight_gain=highlight_gain,
        shot_variance=shot,
        read_variance=read or 0.0,
        srgb_noise_sigma_levels=sigma,
        srgb_noise_gray=gray,
        jpeg_quality=quality,
        noise_seed=int(rng.integers(2**31)),
    )


def degrade(
    background_rgb: np.ndarray,
    radius_px: np.ndarray,
    plan: CameraPlan,
    layer_rgb: tuple[np.ndarray, ...] = (),
    margin_px: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one camera-realistic sample.

    Args:
        background_rgb: uint8 H×W×3 sharp sRGB photo (the scene behind any layer).
        radius_px: float H×W radius map (px) of the background.
        plan: the draws (:func:`draw_camera`).
        layer_rgb: uint8 H×W×3 sharp photos, one per ``plan.layers`` entry, back to front.
        margin_px: context rows/columns on every side that the blur may read but the result drops;
            noise and JPEG are applied to the trimmed sample only.

    Returns:
        (blurry uint8 h×w×3, sharp uint8 h×w×3, label radius map float32 h×w), h = H − 2·margin.
    """
    if len(layer_rgb) != len(plan.layers):
        raise ValueError(f"plan has {len(plan.layers)} layers, got {len(layer_rgb)} layer photos")
    scene = srgb_to_linear(background_rgb.astype(np.float32) / 255.0)
    threshold = CAMERA_RANGES.highlight_threshold
    boost = (lambda x: boost_highlights(x, threshold, plan.highlight_gain)) if plan.highlight_gain else (lambda x: x)
    scene = boost(scene)
    blurred = defocus(scene, radius_px, plan.psf)
    label = np.asarray(radius_px, dtype=np.float32).copy()
    height, width = radius_px.shape
    for layer, photo in zip(plan.layers, layer_rgb):
        colour = boost(srgb_to_linear(photo.astype(np.float32) / 255.0))
        alpha = random_mask(height, width, layer.area, np.random.default_rng(layer.mask_seed))
        blurred = composite_layer(blurred, colour, alpha, layer.radius_px, plan.psf)
        scene = alpha[..., None] * colour + (1.0 - alpha[..., None]) * scene
        label = np.where(alpha > 0.5, np.float32(quantize_radius_px(np.float32(layer.radius_px))), label)
    trim = (slice(margin_px, height - margin_px), slice(margin_px, width - margin_px))
    blurred, scene, label = blurred[trim], scene[trim], label[trim]
    rng = np.random.default_rng(plan.noise_seed)
    if plan.shot_variance is not None:
        # Clipped pixels carry no noise (the sensor is full): RSBlur.
        saturated = blurred >= 1.0
        blurred = np.where(saturated, blurred, add_sensor_noise(blurred, plan.shot_variance, plan.read_variance, rng))
    blurry = quantise(linear_to_srgb(blurred))
    if plan.srgb_noise_sigma_levels is not None:
        blurry = add_srgb_noise(blurry, plan.srgb_noise_sigma_levels, plan.srgb_noise_gray, rng)
    if plan.jpeg_quality is not None:
        blurry = jpeg(blurry, plan.jpeg_quality)
    return blurry, quantise(linear_to_srgb(scene)), quantize_radius_px(label)
