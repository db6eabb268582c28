"""Real-photo benchmark: SVBR-Net on the Pixel 4 dual-pixel set (issue [real]).

    python -m benchmarks.real --extract-from /work/.mirror/cmu-ci-lab+dual_pixel_defocus_estimation_deblurring/repo
    python -m benchmarks.real                                    # ¼ scale, bundled model -> reports/real/
    python -m benchmarks.real --scale 0.5 --output reports/real-half
    svbr eval-real --model runtime/models/svbrnet.onnx --limit 4

Data: the 17 scenes of ``DP_data_pixel_4/`` in the public repository
``cmu-ci-lab/dual_pixel_defocus_estimation_deblurring`` (Xin et al., ICCV 2021):
per scene the two dual-pixel halves ``NNN_left.png`` / ``NNN_right.png``
(16-bit PNG holding 14-bit green-channel DP data, 1512×2016, black level 1024)
and the all-in-focus image ``gt_all_in_focus_im/NNN_gt.png`` (16-bit linear,
1008×1344: the central field of view the authors' ``code/util.py`` keeps,
6×8 patches of 168 px, offsets 252 / 336). ``--extract-from`` copies these
files (nothing else) out of a mirror's bare git dir (``git show HEAD:path``)
or out of a checkout into the data folder: ``--data DIR``, else
``$SVBR_PIXEL4_DIR``, else ``~/.cache/svbr-net/pixel4``. The images stay
outside the repository, are never committed and are never trained on: they
are for measurement only.

Protocol (fixed by the issue):

1. blurry = (left − 1024) + (right − 1024) in float (no per-half clipping, no
   vignetting correction), central 1008×1344 crop; target = the
   all-in-focus image, already that crop. Both linear grey.
2. Both area-downsampled in linear light (``cv2.INTER_AREA``) by ``--scale``
   (¼ default; ½ and 1 also).
3. The blurry is gain-matched to the target (least-squares scalar), registered
   onto it by phase correlation, then gain-matched again on the registered
   pair. A shift over 8 px at full scale (8·scale px here) is rejected and not
   applied; else the sub-pixel shift is applied to the blurry with
   ``cv2.warpAffine`` (bicubic, reflected border). The phase correlation is
   computed here, not by ``cv2.phaseCorrelate``: its 5×5 centroid is biased
   (a 0.5-px shift of a Pixel 4 target measures 0.18 px) and, under disk blur,
   whose transfer function changes sign, off by up to 0.5 px, where
   :func:`estimate_shift` (Hanning window, normalised cross-power spectrum
   weighted by a Gaussian of σ = 0.0125 cycles per full-resolution px, below
   the first zero of the larger blurs, peak refined by an upsampled DFT to
   1/40 px) stays within 0.05 px. ``cv2.phaseCorrelate``'s estimate is
   recorded per scene for comparison (``shift_opencv_px``).
4. Both divided by the target's 99.5th percentile; for display and scoring
   clipped to [0, 1], gamma 1/2.2, rounded to uint8, the blurry copied to three
   channels (the network's RGB input).
5. PSNR / SSIM (``runtime.metrics``, the package's own, on [0, 1] floats) on one
   grey channel (an output's three channels averaged) without an 8-px border.

Rows: ``blurry``; ``deblur(photo)``: the network with no map, i.e. the map
``runtime.estimate_blur_map`` makes from the photo (``Deblurrer.deblur`` with
``blur_map=None``); ``fitted map``: the network with an oracle map fitted from
the pair — per pixel the disk radius (0, ``RADIUS_LEVELS_PX`` and, to measure
larger radii up to 12 px at ¼ scale, scaled with ``--scale``) whose re-blur of the target
(``runtime.defocus.disk_kernel``, linear light, normalised units, unclipped)
best matches the blurry image in a 15-px window at ¼ scale (box-filtered
squared error, window scaled with ``--scale``), median-filtered (5×5), and
not clipped: radii above the trained 6 px go to the runtime's coarser pyramid
levels (``max_radius_px`` 48 covers the fit's ceiling at every scale; the share
above 6 px is reported);
``layered Wiener``: ``training.baselines.layered_deconvolution`` with the same
fitted map clipped to 6 px (its layers are the trained radii), regularisation 0.003 (the value ``svbr eval`` chose on the
training split, README "Evaluating a model"; ``--regularisation``).

Writes ``real.json`` (settings, the model path and sha256, per-scene and mean
numbers), ``real.md`` (tables) and ``real.png`` (a grid of a few scenes:
blurry | deblur(photo) | fitted-map deblur | target) to ``--output``
(default ``reports/real``). :func:`score_pixel4` is the same measurement for
any ``deblur_fn(uint8 H×W×3 RGB) -> uint8 H×W×3``, e.g. a PyTorch model in
training (no ONNX export needed). Torch-free; single-threaded by default
(OpenCV one thread, ONNX Runtime ``--threads 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks._common import display_path
from runtime.arguments import add_deblur_options, add_output, deblur_option_error
from runtime.constants import MAX_RADIUS_PX, RADIUS_LEVELS_PX
from runtime.defocus import disk_kernel
from runtime.io import file_sha256
from runtime.metrics import psnr, ssim

# --- the data ---------------------------------------------------------------------------------

SOURCE = "github:cmu-ci-lab/dual_pixel_defocus_estimation_deblurring"
SOURCE_URL = "https://github.com/cmu-ci-lab/dual_pixel_defocus_estimation_deblurring"
REPO_FOLDER = "DP_data_pixel_4"
TARGET_FOLDER = "gt_all_in_focus_im"
DATA_ENV = "SVBR_PIXEL4_DIR"
DEFAULT_DATA_DIR = Path("~/.cache/svbr-net/pixel4")
DEFAULT_OUTPUT = Path("reports/real")

# --- the protocol -----------------------------------------------------------------------------

BLACK_LEVEL = 1024
CROP_HW = (1008, 1344)
SCALES = (0.25, 0.5, 1.0)
DEFAULT_SCALE = 0.25
MAX_SHIFT_FULL_PX = 8.0
#: Registration weights frequencies by a Gaussian of this σ (cycles/px at ¼ scale; divided by scale/0.25).
REGISTRATION_CUTOFF_AT_QUARTER = 0.05
REGISTRATION_UPSAMPLE = 40
WHITE_PERCENTILE = 99.5
GAMMA = 1.0 / 2.2
BORDER_PX = 8
FIT_WINDOW_AT_QUARTER_PX = 15
FIT_MEDIAN_PX = 5
#: Largest candidate radius of the fitted map at ¼ scale (scaled with --scale: 46.5 px at full size).
FIT_CEILING_AT_QUARTER_PX = 12.0
DEFAULT_REGULARISATION = 0.003
GRID_SCENES = 4
GRID_MAX_BYTES = 1_500_000

ROWS = ("blurry", "deblur(photo)", "fitted map", "layered Wiener")

DeblurFn = Callable[[np.ndarray], np.ndarray]
MapDeblurFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class DataMissing(RuntimeError):
    """The Pixel 4 data folder is missing or holds no complete scene."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir``, else ``$SVBR_PIXEL4_DIR``, else ``~/.cache/svbr-net/pixel4``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    return DEFAULT_DATA_DIR.expanduser()


def how_to_get_data(data_dir: Path) -> str:
    """The message shown when the data is missing."""
    return (
        f"Pixel 4 data not found in {data_dir} (needs NNN_left.png, NNN_right.png and "
        f"{TARGET_FOLDER}/NNN_gt.png per scene).\n"
        f"Get the repository {SOURCE_URL} (git clone, or a mirror's bare git dir) and extract it with\n"
        f"  python -m benchmarks.real --extract-from PATH [--data {data_dir}]\n"
        f"(PATH: the bare git dir or the checkout), or point --data / ${DATA_ENV} at an extracted folder."
    )


def list_scenes(data_dir: Path) -> list[str]:
    """Scene ids (``"001"``, ...) with both halves and an all-in-focus target, sorted."""
    if not data_dir.is_dir():
        return []
    scenes = []
    for left in sorted(data_dir.glob("*_left.png")):
        scene = left.name[: -len("_left.png")]
        if (data_dir / f"{scene}_right.png").is_file() and (data_dir / TARGET_FOLDER / f"{scene}_gt.png").is_file():
            scenes.append(scene)
    return scenes


def _wanted(relative: str) -> bool:
    """Files of ``DP_data_pixel_4/`` the benchmark needs (path relative to that folder)."""
    name = relative.rsplit("/", 1)[-1]
    if "/" not in relative:
        return name.endswith(("_left.png", "_right.png"))
    return relative.startswith(f"{TARGET_FOLDER}/") and relative.count("/") == 1 and name.endswith("_gt.png")


def extract(source: str | os.PathLike[str], data_dir: Path, log: Callable[[str], None] = print) -> int:
    """Copy the benchmark's files out of a mirror's git dir (``git show HEAD:path``) or a checkout.

    Args:
        source: a bare git dir (e.g. ``/work/.mirror/<owner>+<name>/repo``), a checkout's ``.git``,
            or a checkout (a folder holding ``DP_data_pixel_4/``).
        data_dir: destination (created).

    Returns:
        The number of files written.
    """
    source = Path(source).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    if (source / REPO_FOLDER).is_dir():  # a checkout
        root = source / REPO_FOLDER
        for path in sorted(root.rglob("*.png")):
            relative = path.relative_to(root).as_posix()
            if _wanted(relative):
                (data_dir / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, data_dir / relative)
                written += 1
        return written
    git = ["git", f"--git-dir={source}"]
    listing = subprocess.run(
        [*git, "ls-tree", "-r", "-z", "--name-only", "HEAD", "--", f"{REPO_FOLDER}/"], capture_output=True, check=False
    )
    if listing.returncode != 0:
        raise DataMissing(
            f"{source} is neither a checkout holding {REPO_FOLDER}/ nor a git dir: "
            f"{listing.stderr.decode(errors='replace').strip()}"
        )
    for name in sorted(filter(None, listing.stdout.decode().split("\0"))):
        relative = name[len(REPO_FOLDER) + 1 :]
        if not _wanted(relative):
            continue
        blob = subprocess.run([*git, "show", f"HEAD:{name}"], capture_output=True, check=True).stdout
        if not blob.startswith(b"\x89PNG"):
            raise DataMissing(f"{name} in {source} is not a PNG (a Git LFS pointer?)")
        target = data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        written += 1
        log(f"real: extracted {name}")
    return written


# --- preparing a scene ------------------------------------------------------------------------


def central_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The central ``height``×``width`` window (offsets rounded down, as the authors' code)."""
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    if top < 0 or left < 0:
        raise ValueError(f"image {image.shape[:2]} is smaller than the crop {height}×{width}")
    return image[top : top + height, left : left + width]


def downsample(image: np.ndarray, scale: float) -> np.ndarray:
    """Area downsampling (``cv2.INTER_AREA``) of a linear image; ``scale`` 1 returns it unchanged."""
    if scale == 1:
        return image
    height, width = image.shape[:2]
    size = (int(round(width * scale)), int(round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def gain_match(blurry: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """``(g · blurry, g)`` with the least-squares gain ``g = <blurry, target> / <blurry, blurry>``."""
    b = blurry.astype(np.float64)
    denominator = float(np.sum(b * b))
    gain = float(np.sum(b * target)) / denominator if denominator > 0 else 1.0
    return blurry * gain, gain


def estimate_shift(
    moving: np.ndarray,
    reference: np.ndarray,
    cutoff: float | None = REGISTRATION_CUTOFF_AT_QUARTER,
    upsample: int = REGISTRATION_UPSAMPLE,
) -> tuple[float, float, float]:
    """Band-limited phase correlation: sub-pixel ``(dx, dy, response)``, ``moving`` ≈ ``reference`` moved by (dx, dy).

    Both images are mean-subtracted and Hanning-windowed; the normalised cross-power spectrum
    is weighted by a Gaussian of σ = ``cutoff`` cycles/px (``None``: no weighting, plain phase
    correlation), the integer peak of its inverse FFT is located, then refined on a grid of
    1/``upsample`` px by a matrix-multiply DFT around it (Guizar-Sicairos et al. 2008).
    ``response`` is the peak height over the weights' sum (1 for a perfect translate).
    """
    height, width = reference.shape
    window = cv2.createHanningWindow((width, height), cv2.CV_64F)
    a = (reference - reference.mean()) * window
    b = (moving - moving.mean()) * window
    cross = np.fft.fft2(b) * np.conj(np.fft.fft2(a))
    cross /= np.abs(cross) + 1e-15 * np.abs(cross).max()
    fy, fx = np.fft.fftfreq(height), np.fft.fftfreq(width)
    if cutoff:
        weight = np.exp(-0.5 * (fy[:, None] ** 2 + fx[None, :] ** 2) / cutoff**2)
    else:
        weight = np.ones((height, width))
    cross *= weight
    correlation = np.real(np.fft.ifft2(cross))
    py, px = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    py, px = (py - height if py > height // 2 else py), (px - width if px > width // 2 else px)
    offsets = np.arange(-1.5 * upsample, 1.5 * upsample + 1) / upsample
    ys, xs = py + offsets, px + offsets
    fine = np.real(np.exp(2j * np.pi * np.outer(ys, fy)) @ cross @ np.exp(2j * np.pi * np.outer(fx, xs)))
    iy, ix = np.unravel_index(int(np.argmax(fine)), fine.shape)
    return float(xs[ix]), float(ys[iy]), float(fine[iy, ix] / (weight.sum()))


def opencv_shift(moving: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """``cv2.phaseCorrelate``'s (dx, dy), same convention; recorded for comparison only (see the docstring)."""
    height, width = reference.shape
    window = cv2.createHanningWindow((width, height), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(reference.astype(np.float64), moving.astype(np.float64), window)
    return float(dx), float(dy)


def translate(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` translated by (dx, dy) px (bicubic, reflected border)."""
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    height, width = image.shape[:2]
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def register(
    moving: np.ndarray,
    reference: np.ndarray,
    max_shift_px: float,
    cutoff: float | None = REGISTRATION_CUTOFF_AT_QUARTER,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Align ``moving`` onto ``reference`` by band-limited phase correlation (:func:`estimate_shift`).

    Returns:
        (aligned image, {"dx", "dy" (measured, px of this image), "response", "applied"}); a shift
        longer than ``max_shift_px`` is not applied (``applied`` False, the image returned as is).
    """
    dx, dy, response = estimate_shift(moving, reference, cutoff)
    applied = bool(np.hypot(dx, dy) <= max_shift_px)
    aligned = translate(moving, -dx, -dy) if applied else moving
    return aligned, {"dx": dx, "dy": dy, "response": response, "applied": applied}


def encode(linear: np.ndarray) -> np.ndarray:
    """Normalised linear grey -> uint8: clip to [0, 1], gamma 1/2.2, round."""
    return np.rint(np.clip(linear, 0.0, 1.0) ** GAMMA * 255.0).astype(np.uint8)


def decode(image_uint8: np.ndarray) -> np.ndarray:
    """uint8 (gamma 1/2.2) -> linear float in [0, 1]."""
    return (image_uint8.astype(np.float64) / 255.0) ** (1.0 / GAMMA)


def prepare(left: np.ndarray, right: np.ndarray, target: np.ndarray, scale: float = DEFAULT_SCALE) -> dict[str, Any]:
    """Steps 1–4 of the protocol for one scene.

    Args:
        left, right: the raw 16-bit dual-pixel halves (full frame).
        target: the 16-bit all-in-focus image (the central crop).
        scale: downsampling factor.

    Returns:
        ``blurry_linear`` / ``target_linear`` (float, divided by the target's white level, unclipped),
        ``blurry`` (uint8 H×W×3), ``target`` (uint8 H×W), ``gain``, ``registration``, ``white``.
    """
    height, width = CROP_HW
    blurry = (left.astype(np.float64) - BLACK_LEVEL) + (right.astype(np.float64) - BLACK_LEVEL)
    blurry = central_crop(blurry, height, width)
    sharp = target.astype(np.float64)
    if sharp.shape != (height, width):
        sharp = central_crop(sharp, height, width)
    blurry, sharp = downsample(blurry, scale), downsample(sharp, scale)
    blurry, first_gain = gain_match(blurry, sharp)
    cutoff = REGISTRATION_CUTOFF_AT_QUARTER * 0.25 / scale
    registration_cv2 = opencv_shift(blurry, sharp)
    blurry, registration = register(blurry, sharp, MAX_SHIFT_FULL_PX * scale, cutoff)
    registration["opencv"] = registration_cv2
    blurry, second_gain = gain_match(blurry, sharp)
    white = float(np.percentile(sharp, WHITE_PERCENTILE))
    blurry, sharp = blurry / white, sharp / white
    return {
        "blurry_linear": blurry,
        "target_linear": sharp,
        "blurry": np.repeat(encode(blurry)[..., None], 3, axis=2),
        "target": encode(sharp),
        "gain": first_gain * second_gain,
        "registration": registration,
        "white": white,
    }


def load_scene(data_dir: Path, scene: str, scale: float = DEFAULT_SCALE) -> dict[str, Any]:
    """Read one scene's three PNGs and :func:`prepare` it."""

    def read(path: Path) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None or image.dtype != np.uint16 or image.ndim != 2:
            raise DataMissing(f"{path}: expected a 16-bit grey PNG")
        return image

    return prepare(
        read(data_dir / f"{scene}_left.png"),
        read(data_dir / f"{scene}_right.png"),
        read(data_dir / TARGET_FOLDER / f"{scene}_gt.png"),
        scale,
    )


# --- scoring ----------------------------------------------------------------------------------


def grey(image: np.ndarray) -> np.ndarray:
    """uint8 H×W or H×W×C -> float H×W in [0, 1] (channels averaged)."""
    image = np.asarray(image, dtype=np.float64)
    return (image.mean(axis=2) if image.ndim == 3 else image) / 255.0  # mean of levels first: exact for equal channels


def score(target: np.ndarray, test: np.ndarray, border: int = BORDER_PX) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``test`` against ``target`` on one grey channel, ``border`` px cropped."""
    a, b = grey(target), grey(test)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    if border:
        a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return psnr(a, b), ssim(a, b)


# --- the fitted (oracle) map ------------------------------------------------------------------


def fit_levels(scale: float = DEFAULT_SCALE) -> np.ndarray:
    """Candidate radii: 0, the 23 trained levels, then larger radii (0.5 px apart at ¼ scale) to measure clipping."""
    factor = max(1.0, scale / 0.25)
    extra = np.arange(MAX_RADIUS_PX + 0.5, FIT_CEILING_AT_QUARTER_PX * factor + 1e-9, 0.5 * factor)
    return np.concatenate([[0.0], RADIUS_LEVELS_PX.astype(np.float64), extra])


def fit_window(scale: float = DEFAULT_SCALE) -> int:
    """Error window (odd, px): 15 at ¼ scale, proportional to the scale."""
    size = int(round(FIT_WINDOW_AT_QUARTER_PX * scale / 0.25))
    return max(3, size | 1)


def fit_radius_map(
    target_linear: np.ndarray,
    blurry_linear: np.ndarray,
    levels: np.ndarray | None = None,
    window: int = FIT_WINDOW_AT_QUARTER_PX,
    median: int = FIT_MEDIAN_PX,
    tolerance: float = 0.0,
) -> np.ndarray:
    """Oracle blur map: per pixel the disk radius whose blur of the target best explains the blurry image.

    Both images linear grey of one size and gain. For each candidate radius the target is
    blurred with ``disk_kernel`` (radius 0: unchanged), the squared difference to the blurry
    image box-filtered over ``window`` px, and every pixel takes the radius of least error
    (with ``tolerance`` > 0: the smallest radius whose error is within ``1 + tolerance`` times
    the least); the result is median-filtered (``median`` px, 0 = none). Not clipped.

    Returns:
        float32 H×W radii in px.
    """
    levels = fit_levels() if levels is None else np.asarray(levels, dtype=np.float64)
    target = target_linear.astype(np.float32)
    blurry = blurry_linear.astype(np.float32)
    errors = np.empty((len(levels), *target.shape), np.float32)
    for index, radius in enumerate(levels):
        reblurred = (
            target
            if radius <= 0
            else cv2.filter2D(target, -1, disk_kernel(float(radius)), borderType=cv2.BORDER_REFLECT)
        )
        errors[index] = cv2.boxFilter((reblurred - blurry) ** 2, -1, (window, window), borderType=cv2.BORDER_REFLECT)
    if tolerance > 0:
        choice = np.argmax(errors <= errors.min(axis=0) * (1.0 + tolerance), axis=0)
    else:
        choice = np.argmin(errors, axis=0)
    best = levels[choice].astype(np.float32)
    if median:
        best = cv2.medianBlur(best, median)
    return best


# --- the benchmark ----------------------------------------------------------------------------


def _mean(records: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in records if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def score_pixel4(
    deblur_fn: DeblurFn | None,
    scale: float = DEFAULT_SCALE,
    data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    *,
    map_deblur_fn: MapDeblurFn | None = None,
    layered: bool = True,
    regularisation: float = DEFAULT_REGULARISATION,
    fit_tolerance: float = 0.0,
    progress: Callable[[str], None] | None = None,
    keep_images: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The Pixel 4 benchmark for any deblurring function (the module docstring's protocol).

    Args:
        deblur_fn: ``fn(uint8 H×W×3 RGB) -> uint8 H×W×3`` with no map (it may estimate one), or
            ``None`` to skip the ``deblur(photo)`` row.
        scale: 0.25, 0.5 or 1.
        data_dir: the extracted data (default: ``$SVBR_PIXEL4_DIR`` or ``~/.cache/svbr-net/pixel4``).
        limit: the first ``limit`` scenes only.
        map_deblur_fn: ``fn(uint8 H×W×3 RGB, radius px H×W float32) -> uint8 H×W×3`` for the
            ``fitted map`` row (skipped when ``None``).
        layered: score the layered Wiener baseline with the fitted map.
        regularisation: its Wiener noise-to-signal ratio.
        fit_tolerance: :func:`fit_radius_map`'s ``tolerance`` (0: the least-error radius, the protocol).
        progress: called with one line per scene.
        keep_images: scene ids whose images to return under ``"images"`` (for a picture).

    Returns:
        ``{"protocol", "scale", "data_dir", "scenes": [per scene], "mean": {row: {"psnr", "ssim"}},
        "scene_count", "fitted_map": {...}, "seconds"}`` (+ ``"images"``).

    Raises:
        DataMissing: no complete scene in the data folder (message says how to get it).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    folder = resolve_data_dir(data_dir)
    scenes = list_scenes(folder)
    if not scenes:
        raise DataMissing(how_to_get_data(folder))
    if limit is not None:
        scenes = scenes[:limit]
    layered_fn = None
    if layered:
        from training.baselines import layered_deconvolution  # numpy + OpenCV only

        layered_fn = layered_deconvolution
    levels, window = fit_levels(scale), fit_window(scale)
    records: list[dict[str, Any]] = []
    images: dict[str, dict[str, np.ndarray]] = {}
    start = time.perf_counter()
    for number, scene in enumerate(scenes, 1):
        scene_start = time.perf_counter()
        data = load_scene(folder, scene, scale)
        blurry, target = data["blurry"], data["target"]
        outputs: dict[str, np.ndarray] = {"blurry": blurry}
        if deblur_fn is not None:
            outputs["deblur(photo)"] = np.asarray(deblur_fn(blurry.copy()))
        fitted = fit_radius_map(data["target_linear"], data["blurry_linear"], levels, window, tolerance=fit_tolerance)
        above_trained = float(np.mean(fitted > MAX_RADIUS_PX))  # deblurred on coarser pyramid levels
        fitted_map = fitted.astype(np.float32)
        if map_deblur_fn is not None:
            outputs["fitted map"] = np.asarray(map_deblur_fn(blurry.copy(), fitted_map))
        if layered_fn is not None:
            # The baseline's layers are the 23 trained radii: larger radii deconvolve at 6 px, as before the pyramid.
            outputs["layered Wiener"] = layered_fn(blurry, np.minimum(fitted_map, MAX_RADIUS_PX), regularisation)
        record: dict[str, Any] = {
            "scene": scene,
            "size": [int(target.shape[1]), int(target.shape[0])],
            "gain": data["gain"],
            "shift_px": [data["registration"]["dx"], data["registration"]["dy"]],
            "shift_response": data["registration"]["response"],
            "shift_applied": data["registration"]["applied"],
            "shift_opencv_px": list(data["registration"]["opencv"]),
            "fitted_map_mean_px": float(fitted_map.mean()),
            "fitted_map_above_6px_fraction": above_trained,
            "fitted_map_at_ceiling_fraction": float(np.mean(fitted >= levels[-1])),
        }
        for row, output in outputs.items():
            if output.shape[:2] != target.shape:
                raise ValueError(f"{row}: output {output.shape} does not match the input {blurry.shape}")
            record[f"{row} psnr"], record[f"{row} ssim"] = score(target, output)
        record["seconds"] = time.perf_counter() - scene_start
        records.append(record)
        if keep_images and scene in keep_images:
            images[scene] = {**outputs, "target": target, "fitted_map_px": fitted_map}
        if progress is not None:
            scores = "  ".join(
                f"{row} {record[f'{row} psnr']:.2f}/{record[f'{row} ssim']:.3f}"
                for row in ROWS
                if f"{row} psnr" in record
            )
            progress(
                f"real: [{number}/{len(scenes)}] scene {scene}: {scores}  (fitted > 6 px "
                f"{100 * above_trained:.1f}%, shift {np.hypot(*record['shift_px']):.2f} px, "
                f"{record['seconds']:.1f} s)"
            )
    rows = [row for row in ROWS if f"{row} psnr" in records[0]]
    report: dict[str, Any] = {
        "benchmark": "pixel4-real",
        "source": SOURCE_URL,
        "data_dir": str(folder),
        "scale": scale,
        "scene_count": len(records),
        "protocol": {
            "blurry": f"(left - {BLACK_LEVEL}) + (right - {BLACK_LEVEL}), central {CROP_HW[0]}x{CROP_HW[1]} crop",
            "target": f"{TARGET_FOLDER}/NNN_gt.png ({CROP_HW[0]}x{CROP_HW[1]}, linear)",
            "downsample": f"cv2.INTER_AREA x{scale} in linear light",
            "gain": "least-squares scalar, before and after registration",
            "registration": f"phase correlation (Hanning window, Gaussian band limit sigma "
            f"{REGISTRATION_CUTOFF_AT_QUARTER * 0.25 / scale:g} cycles/px, DFT-upsampled peak "
            f"1/{REGISTRATION_UPSAMPLE} px), max shift {MAX_SHIFT_FULL_PX:g} px at full scale, "
            "warpAffine bicubic",
            "normalise": f"divide by the target's {WHITE_PERCENTILE}th percentile, clip [0, 1]",
            "gamma": round(GAMMA, 6),
            "metrics": f"runtime.metrics psnr/ssim on grey [0, 1], border {BORDER_PX} px cropped",
            "fitted_map": {
                "levels_px": [float(v) for v in levels],
                "window_px": window,
                "median_px": FIT_MEDIAN_PX,
                "tolerance": fit_tolerance,
            },
            "layered_wiener_regularisation": regularisation if layered else None,
        },
        "rows": rows,
        "mean": {row: {"psnr": _mean(records, f"{row} psnr"), "ssim": _mean(records, f"{row} ssim")} for row in rows},
        "fitted_map": {
            "mean_px": _mean(records, "fitted_map_mean_px"),
            "above_6px_fraction": _mean(records, "fitted_map_above_6px_fraction"),
            "at_ceiling_fraction": _mean(records, "fitted_map_at_ceiling_fraction"),
        },
        "shifts_rejected": [r["scene"] for r in records if not r["shift_applied"]],
        "scenes": records,
        "seconds": time.perf_counter() - start,
    }
    if keep_images:
        report["images"] = images
    return report


# --- outputs ----------------------------------------------------------------------------------


def deblur_settings(model: dict[str, Any]) -> str:
    """``", strength 0.8"`` etc. for the Deblurrer options that differ from their defaults (older reports: none)."""
    from runtime.pyramid import DEFAULT_MAX_RADIUS_PX

    settings = []
    if model.get("strength", 1.0) != 1.0:
        settings.append(f"strength {model['strength']:g}")
    if model.get("max_radius_px", DEFAULT_MAX_RADIUS_PX) != DEFAULT_MAX_RADIUS_PX:
        settings.append(f"max_radius_px {model['max_radius_px']:g}")
    return "".join(f", {setting}" for setting in settings)


def markdown(report: dict[str, Any]) -> str:
    """``real.md``: mean table, then per scene."""
    rows = report["rows"]
    model = report.get("model") or {}
    lines = [
        f"# Pixel 4 dual-pixel benchmark (scale {report['scale']:g}, {report['scene_count']} scenes)",
        "",
        f"Model: `{model.get('path')}` (sha256 `{str(model.get('sha256'))[:16]}…`){deblur_settings(model)}. "
        f"Protocol: `benchmarks/real.py`; border {BORDER_PX} px, grey, gamma 1/2.2.",
        "",
        "| method | PSNR dB | SSIM |",
        "| --- | --- | --- |",
    ]
    for row in rows:
        mean = report["mean"][row]
        lines.append(f"| {row} | {mean['psnr']:.2f} | {mean['ssim']:.3f} |")
    fitted = report["fitted_map"]
    lines += [
        "",
        f"Fitted map: mean {fitted['mean_px']:.2f} px; {100 * fitted['above_6px_fraction']:.1f} % of pixels "
        f"above {MAX_RADIUS_PX:g} px, deblurred on coarser pyramid levels ({100 * fitted['at_ceiling_fraction']:.1f} % at the "
        f"{report['protocol']['fitted_map']['levels_px'][-1]:g}-px ceiling of the fit). "
        f"Layered Wiener regularisation {report['protocol']['layered_wiener_regularisation']}. "
        f"Shifts rejected: {', '.join(report['shifts_rejected']) or 'none'}. "
        f"{report['seconds']:.0f} s.",
        "",
        "Per scene (PSNR dB / SSIM):",
        "",
        "| scene | " + " | ".join(rows) + " | fitted > 6 px % |",
        "| --- |" + " --- |" * (len(rows) + 1),
    ]
    for record in report["scenes"]:
        cells = [f"{record[f'{row} psnr']:.2f} / {record[f'{row} ssim']:.3f}" for row in rows]
        lines.append(
            f"| {record['scene']} | " + " | ".join(cells) + f" | {100 * record['fitted_map_above_6px_fraction']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def picture(images: dict[str, dict[str, np.ndarray]], path: Path, max_bytes: int = GRID_MAX_BYTES) -> None:
    """Grey PNG grid, one scene per row: blurry | deblur(photo) | fitted map | target (labelled)."""
    columns = [
        c for c in ("blurry", "deblur(photo)", "fitted map", "target") if all(c in scene for scene in images.values())
    ]
    label_h = 22
    width = 1600
    for _ in range(8):
        tiles = []
        for scene, outputs in images.items():
            cells = []
            for column in columns:
                cell = outputs[column]
                cell = np.rint(grey(cell) * 255).astype(np.uint8)
                cell_w = width // len(columns)
                if cell.shape[1] > cell_w:
                    cell = cv2.resize(
                        cell, (cell_w, round(cell.shape[0] * cell_w / cell.shape[1])), interpolation=cv2.INTER_AREA
                    )
                band = np.full((label_h, cell.shape[1]), 255, np.uint8)
                cv2.putText(band, f"{scene} {column}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1, cv2.LINE_AA)
                cells.append(np.pad(np.vstack([band, cell]), ((0, 2), (0, 2)), constant_values=255))
            tiles.append(np.hstack(cells))
        grid = np.vstack(tiles)
        ok, encoded = cv2.imencode(".png", grid, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        if ok and len(encoded) <= max_bytes:
            break
        width = int(width * 0.8)
    path.write_bytes(encoded.tobytes())


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="svbr eval-real",
        description="SVBR-Net on real photos: the Pixel 4 dual-pixel set (Xin et al. 2021), blurry vs "
        "deblurred vs all-in-focus, PSNR/SSIM. Protocol: see benchmarks/real.py.",
        epilog=f"Data: {SOURCE_URL}, folder {REPO_FOLDER}/. Extract once with --extract-from PATH, where PATH "
        "is a bare git dir (e.g. the fetch mirror "
        "/work/.mirror/cmu-ci-lab+dual_pixel_defocus_estimation_deblurring/repo, read with `git show`) "
        "or a clone of the repository. Measurement only: never train on these images.",
    )
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled runtime/models/svbrnet.onnx)")
    parser.add_argument(
        "--scale",
        type=float,
        default=DEFAULT_SCALE,
        choices=SCALES,
        help="downsampling of the 1008×1344 crop (default 0.25)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="first N scenes only")
    parser.add_argument(
        "--data", type=Path, metavar="DIR", help=f"extracted data (default: ${DATA_ENV}, else {DEFAULT_DATA_DIR})"
    )
    add_output(
        parser,
        aliases=("--out",),
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help=f"report folder (default {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--extract-from",
        type=Path,
        metavar="PATH",
        help=f"copy the needed PNGs of {REPO_FOLDER}/ from a git dir or checkout into the data folder, then exit",
    )
    parser.add_argument(
        "--regularisation",
        type=float,
        default=DEFAULT_REGULARISATION,
        help=f"layered Wiener noise-to-signal ratio (default {DEFAULT_REGULARISATION:g}, as chosen by `svbr eval`)",
    )
    parser.add_argument(
        "--fit-tolerance",
        type=float,
        default=0.0,
        metavar="T",
        help="fitted map: take the smallest radius whose error is within (1+T) x the least "
        "(default 0: the least-error radius, the protocol)",
    )
    parser.add_argument("--backend", default="auto", help="runtime backend (default auto)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    add_deblur_options(parser)  # --strength and --max-radius, as svbr deblur: both deblurred rows use them
    parser.add_argument("--grid", type=int, default=GRID_SCENES, metavar="N", help="scenes in real.png (default 4)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    problem = deblur_option_error(args)
    if problem:
        parser.error(problem)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log = (lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    cv2.setNumThreads(1)
    data_dir = resolve_data_dir(args.data)
    if args.extract_from is not None:
        try:
            count = extract(args.extract_from, data_dir, log)
        except (DataMissing, subprocess.CalledProcessError, OSError) as error:
            print(f"real: extraction failed: {error}", file=sys.stderr)
            return 2
        scenes = list_scenes(data_dir)
        print(f"real: wrote {count} files to {data_dir}: {len(scenes)} complete scenes")
        return 0 if scenes else 2
    if not list_scenes(data_dir):
        print(f"real: {how_to_get_data(data_dir)}", file=sys.stderr)
        return 2

    from runtime.deblurrer import BUNDLED_MODEL_PATH, Deblurrer

    model_path = args.model if args.model is not None else BUNDLED_MODEL_PATH
    try:
        deblurrer = Deblurrer(
            model_path,
            backend=args.backend,
            threads=args.threads,
            strength=args.strength,
            max_radius_px=args.max_radius,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"real: {error}", file=sys.stderr)
        return 2
    estimated: list[float] = []

    def deblur_photo(image: np.ndarray) -> np.ndarray:
        sharp, used = deblurrer.deblur(image, channel_order="rgb", return_map=True)
        estimated.append(float(np.mean(used)))
        return sharp

    def deblur_map(image: np.ndarray, radius: np.ndarray) -> np.ndarray:
        return deblurrer.deblur(image, radius, channel_order="rgb")

    scenes = list_scenes(data_dir)[: args.limit]
    keep = tuple(scenes[int(i)] for i in np.unique(np.linspace(0, len(scenes) - 1, max(1, args.grid)).round()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # estimator warnings (saturation, no edges) are per scene, not news
        report = score_pixel4(
            deblur_photo,
            args.scale,
            data_dir,
            args.limit,
            map_deblur_fn=deblur_map,
            regularisation=args.regularisation,
            fit_tolerance=args.fit_tolerance,
            progress=log,
            keep_images=keep,
        )
    deblurrer.close()
    for record, mean_px in zip(report["scenes"], estimated):
        record["estimated_map_mean_px"] = mean_px
    report["estimated_map_mean_px"] = float(np.mean(estimated))
    report["model"] = {
        "path": display_path(Path(model_path)),  # relative: the committed reports name no machine
        "sha256": file_sha256(Path(model_path)),
        "backend": args.backend,
        "threads": args.threads,
        "strength": args.strength,
        "max_radius_px": args.max_radius,
    }
    images = report.pop("images")
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "real.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.output / "real.md").write_text(markdown(report))
    picture(images, args.output / "real.png")
    if not args.quiet:
        print(markdown(report).split("\n\nFitted map")[0])
        print(f"real: wrote {args.output}/real.json, real.md, real.png ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
