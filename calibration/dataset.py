"""Synthetic calibration and validation sets, drawn from the validation-split images only.

Both sets come from the SPEC §3 generator: a sharp photo, one blur map of one of
the 13 families (or its estimated-map augmentation), the blurred photo. They
never touch a training image: the images are the validation split of
``training.cache.split_by_image`` (the split ``svbr synth --seed`` made), and
the split's images are shared out by position: even positions calibrate, odd
positions validate, so no validation image has ever been seen by calibration
either.

* ``calibration`` samples are exactly what the network sees at deployment:
  the photo at its own resolution (optionally capped, ``max_image_side``),
  cut by the runtime's tile plan (``runtime.tiling.plan_tiles``) into windows of
  ``tile + 2·halo`` px, one window per sample at a random tile position,
  reflect-padded where it leaves the photo, as ``Deblurrer`` does. Activation
  ranges depend on local image content and on those reflected borders, so
  calibrating on the deployment windows (default tile 512 + 2·84 = 680 px, or
  the whole photo when it is smaller) leaves nothing to extrapolate.
* ``validation`` samples are whole ``size``×``size`` images made like training
  samples (photo scaled to cover, centre-cropped, as ``training.cache`` does),
  run full frame: PyTorch and the ONNX models see identical inputs.

Sample ``i`` uses map family ``i mod 13`` and map kind ``(true, matting, true,
domain transform)[i mod 4]``: since 13 and 4 are coprime, every 52 consecutive
samples hold every family with every kind, and any 13 consecutive samples hold
all 13 families (half true maps, a quarter each propagation method, as in the
augmented training stage).

Samples are cached as ``.npz`` under ``CACHE/<kind>-<digest>/`` (the digest
covers every setting except the count, so a larger request extends an existing
set); each is a deterministic function of (seed, kind, index). The network
inputs are made by the runtime's own normalisation
(``runtime.deblurrer.image_to_network`` / ``map_to_network``).

numpy + OpenCV only (no torch).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from runtime.constants import HALO_PX, SIZE_MULTIPLE
from runtime.deblurrer import image_to_network, map_to_network
from runtime.tiling import extract_window, plan_tiles
from training.augment import propagate
from training.cache import find_images, load_sharp_rgb, split_by_image
from training.synthesis import DRAWS_PER_FAMILY, MAP_FAMILIES, blur, sample_blur_maps

#: The two sets.
KINDS: tuple[str, ...] = ("calibration", "validation")

#: Map kind of sample i is MAP_KINDS[i % 4]: None = the true map, else the propagation method.
MAP_KINDS: tuple[str | None, ...] = (None, "matting", None, "domain_transform")

#: Default cache root (relative to the working directory, like ``svbr synth``'s caches).
DEFAULT_CACHE_DIR = Path("cache") / "precision"

#: Default calibration size: windows of the default runtime tile (Deblurrer(tile=512)).
DEFAULT_TILE_PX = 512


@dataclass(frozen=True)
class SetSettings:
    """Everything that defines a synthetic set except its length.

    Attributes:
        kind: ``"calibration"`` or ``"validation"``.
        images_dir: folder of sharp images (the one ``svbr synth`` was given).
        split_seed: seed of the train/validation split; must equal the
            ``svbr synth --seed`` of the training cache (default 0).
        seed: seed of the draws (image order, maps, tile positions).
        size: calibration: the deployment tile edge (px); validation: the sample edge (px).
        halo: calibration only: context (px) around each tile, default ``HALO_PX``.
        max_image_side: calibration only: photos whose longer side exceeds this
            are downscaled (area filter) first; ``None`` keeps native resolution.
    """

    kind: str
    images_dir: str
    split_seed: int = 0
    seed: int = 0
    size: int = DEFAULT_TILE_PX
    halo: int = HALO_PX
    max_image_side: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"set kind must be one of {KINDS}, got {self.kind!r}")
        if self.size < SIZE_MULTIPLE:
            raise ValueError(f"size must be at least {SIZE_MULTIPLE} px, got {self.size}")
        if self.kind == "validation" and self.size % SIZE_MULTIPLE:
            raise ValueError(f"validation samples run full frame: size must be a multiple of {SIZE_MULTIPLE}")
        if self.halo < 0:
            raise ValueError(f"halo must be >= 0 px, got {self.halo}")
        if self.max_image_side is not None and self.max_image_side < SIZE_MULTIPLE:
            raise ValueError(f"max_image_side must be at least {SIZE_MULTIPLE} px, got {self.max_image_side}")


@dataclass(frozen=True)
class WindowSample:
    """One synthetic sample.

    Attributes:
        blurry: uint8 H×W×3 RGB, the network's image input before normalisation.
        radius_px: float32 H×W, the blur map the network is given (px): the true
            map, or its edge-propagated estimate for augmented samples.
        sharp: uint8 H×W×3 RGB ground truth (validation sets only, else ``None``).
        source: image file name; family: map family; map_kind: ``"true"`` or the propagation method.
    """

    blurry: np.ndarray
    radius_px: np.ndarray
    sharp: np.ndarray | None
    source: str
    family: str
    map_kind: str

    def network_inputs(self) -> tuple[np.ndarray, np.ndarray]:
        """(image 1×3×H×W, blur_map 1×1×H×W) float32, normalised exactly as the runtime does."""
        return image_to_network(self.blurry[None], "rgb"), map_to_network(self.radius_px[None])


def set_images(images_dir: Path, split_seed: int, kind: str) -> list[Path]:
    """The validation-split images a set may use: even positions calibrate, odd positions validate."""
    validation = split_by_image(find_images(Path(images_dir)), split_seed)["val"]
    share = validation[0::2] if kind == "calibration" else validation[1::2]
    if not share:
        raise ValueError(f"{images_dir} has too few images for a {kind} set (validation split: {len(validation)})")
    return share


def _kind_code(kind: str) -> int:
    return KINDS.index(kind)


def _load_native(path: Path, max_side: int | None) -> np.ndarray | None:
    """RGB uint8 at native resolution, downscaled (area) to ``max_side`` when larger; None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    height, width = bgr.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def draw_sample(settings: SetSettings, images: list[Path], index: int) -> WindowSample:
    """Sample ``index`` of a set: a deterministic function of (seed, kind, index) and the images.

    Raises:
        ValueError: the chosen image cannot be read.
    """
    order = np.random.default_rng([settings.seed, _kind_code(settings.kind)]).permutation(len(images))
    path = images[order[index % len(images)]]
    rng = np.random.default_rng([settings.seed, _kind_code(settings.kind), index])
    family_index = index % len(MAP_FAMILIES)
    map_kind = MAP_KINDS[index % len(MAP_KINDS)]

    if settings.kind == "validation":
        sharp = load_sharp_rgb(path, settings.size, settings.size)
    else:
        sharp = _load_native(path, settings.max_image_side)
    if sharp is None:
        raise ValueError(f"unreadable image: {path}")
    height, width = sharp.shape[:2]
    maps = sample_blur_maps(height, width, rng)
    true_map = maps[family_index * DRAWS_PER_FAMILY + int(rng.integers(DRAWS_PER_FAMILY))]
    blurry = blur(sharp, true_map)
    given_map = true_map if map_kind is None else propagate(blurry, true_map, method=map_kind)

    if settings.kind == "calibration":
        # One window of the runtime's own tile plan: same size, same reflected borders.
        plan = plan_tiles(height, width, settings.size, settings.halo, SIZE_MULTIPLE)
        origin = plan.origins[int(rng.integers(len(plan)))]
        blurry, given_map = extract_window(blurry, plan, origin), extract_window(given_map, plan, origin)
        sharp = None
    return WindowSample(
        blurry=np.ascontiguousarray(blurry),
        radius_px=np.ascontiguousarray(given_map, dtype=np.float32),
        sharp=sharp,
        source=path.name,
        family=MAP_FAMILIES[family_index],
        map_kind=map_kind or "true",
    )


def set_directory(settings: SetSettings, cache_dir: Path) -> Path:
    """``cache_dir/<kind>-<digest>``: the digest covers the settings and the image list, not the count."""
    images = [p.name for p in set_images(Path(settings.images_dir), settings.split_seed, settings.kind)]
    identity = {**asdict(settings), "images_dir": None, "images": images, "format": 1}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{settings.kind}-{digest}"


def _write_sample(path: Path, sample: WindowSample) -> None:
    arrays = {
        "blurry": sample.blurry,
        "radius_px": sample.radius_px.astype(np.float16),
        "source": sample.source,
        "family": sample.family,
        "map_kind": sample.map_kind,
    }
    if sample.sharp is not None:
        arrays["sharp"] = sample.sharp
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)  # atomic: an interrupted run leaves no torn sample


def read_window_sample(path: Path) -> WindowSample:
    """Load one cached sample (radii are stored float16: every level is exact)."""
    with np.load(path) as data:
        return WindowSample(
            blurry=data["blurry"],
            radius_px=data["radius_px"].astype(np.float32),
            sharp=data["sharp"] if "sharp" in data else None,
            source=str(data["source"]),
            family=str(data["family"]),
            map_kind=str(data["map_kind"]),
        )


def build_set(
    settings: SetSettings, samples: int, cache_dir: Path = DEFAULT_CACHE_DIR, progress: bool = True
) -> list[Path]:
    """Make (or complete) a cached set and return the paths of its first ``samples`` samples.

    Args:
        settings: what to draw.
        samples: how many samples, >= 1.
        cache_dir: cache root; the set lives in :func:`set_directory`.
        progress: show a tqdm bar on stderr while drawing.

    Returns:
        ``samples`` ``.npz`` paths, in index order.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    images = set_images(Path(settings.images_dir), settings.split_seed, settings.kind)
    folder = set_directory(settings, cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "settings.json"
    if not manifest.exists():
        manifest.write_text(json.dumps({**asdict(settings), "images": [p.name for p in images]}, indent=1))
    paths = [folder / f"{index:05d}.npz" for index in range(samples)]
    todo = [index for index, path in enumerate(paths) if not path.exists()]
    bar = tqdm(todo, desc=f"{settings.kind} set", unit="sample", disable=not progress or not todo)
    for index in bar:
        _write_sample(paths[index], draw_sample(settings, images, index))
    return paths


def iterate_set(paths: list[Path]) -> Iterator[WindowSample]:
    """The samples of :func:`build_set`, loaded one at a time."""
    for path in paths:
        yield read_window_sample(path)
