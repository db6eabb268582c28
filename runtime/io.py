"""Image and blur-map files, one set of rules for the whole package.

Used by ``svbr deblur`` / ``svbr estimate`` (:mod:`runtime.cli`), the stream
(:mod:`runtime.stream.uri`, :mod:`runtime.stream.maps`), the Ray archive mode
(:mod:`runtime.archive`) and training's sample cache (:mod:`training.cache`).

* **Images**: the suffixes in :data:`IMAGE_SUFFIXES` (what OpenCV reads);
  :func:`read_image` gives uint8 H×W×3 BGR, :func:`write_image` writes by suffix.
* **Blur maps**: ``.npy`` holds radii in px (float or integer); an 8/16-bit
  single-channel PNG or TIFF holds ``radius / map_scale`` (radius = value ×
  ``map_scale`` px, so a 16-bit PNG with ``map_scale=0.01`` stores 0.01 px steps).
  :func:`read_blur_map` reads both, :func:`write_blur_map` writes both.
* **Pairing**: the map of ``photo.jpg`` is ``photo.npy`` / ``photo.png`` /
  ``photo.tif`` / ``photo.tiff`` in the map folder (:func:`find_map`, by stem; one only).

Errors are :class:`MediaError` (a ``ValueError``) with one sentence naming the file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import cv2
import numpy as np

#: Image files that folder inputs pick up (what OpenCV reads), lower case.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)
#: Blur-map files, in pairing preference order: radii in px (``.npy``) or scaled 8/16-bit single-channel images.
MAP_SUFFIXES: tuple[str, ...] = (".npy", ".png", ".tif", ".tiff")
#: Map files that store ``radius / map_scale`` (need ``map_scale`` to read).
IMAGE_MAP_SUFFIXES: tuple[str, ...] = tuple(s for s in MAP_SUFFIXES if s != ".npy")


class MediaError(ValueError):
    """A problem with an image or blur-map file: one sentence naming the file."""


def is_image_file(path: Path) -> bool:
    """Whether ``path``'s suffix is an image suffix (case-insensitive); does not touch the file."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder`` (by suffix; ``recursive``: in its subfolders too), sorted."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def image_suffix_list() -> str:
    """The image suffixes for messages: ``.bmp, .jpeg, ...``."""
    return ", ".join(sorted(IMAGE_SUFFIXES))


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 H×W×3 BGR (grey images are expanded, 16-bit ones reduced to 8 bits)."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"input image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise MediaError(f"cannot read {path} as an image")
    return image


def check_writable(path: Path) -> None:
    """Refuse, before any work, a path whose suffix OpenCV cannot write."""
    if not cv2.haveImageWriter(str(path)):
        raise MediaError(f"cannot write images with suffix {Path(path).suffix!r}: {path}")


def write_image(path: Path, image: np.ndarray) -> None:
    """Write an image, creating the folder; the suffix picks the format."""
    path = Path(path)
    check_writable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise MediaError(f"failed to write {path}")


def read_blur_map(
    path: Path, map_scale: float | None = None, *, ndim: int | None = 2, mmap: bool = False
) -> np.ndarray:
    """A blur-map file as radii in px.

    Args:
        path: ``.npy`` (radii in px) or an 8/16-bit single-channel ``.png``/``.tif``/``.tiff``.
        map_scale: px of radius per image-map unit (radius = value × ``map_scale``); required for image maps.
        ndim: the array rank required of a ``.npy`` map (2: H×W); ``None`` also admits N×H×W sequences.
        mmap: memory-map a ``.npy`` map (returned as stored, not converted to float32).

    Returns:
        float32 radii (a read-only memory map of the stored dtype with ``mmap``).
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"blur map not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            radius = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (ValueError, OSError) as error:
            raise MediaError(f"cannot read {path} as a .npy array: {error}") from None
        if ndim is not None and radius.ndim != ndim:
            raise MediaError(f"blur map {path} must be a 2-D array of radii (H×W), got shape {radius.shape}")
        if ndim is None and radius.ndim not in (2, 3):
            raise MediaError(f"blur map {path} must be H×W or N×H×W radii, got shape {radius.shape}")
        if not (np.issubdtype(radius.dtype, np.floating) or np.issubdtype(radius.dtype, np.integer)):
            raise MediaError(f"blur map {path} must hold real numbers, got dtype {radius.dtype}")
        return radius if mmap else radius.astype(np.float32)
    if suffix in IMAGE_MAP_SUFFIXES:
        if map_scale is None:
            raise MediaError(
                f"blur map {path} is an image map: give --map-scale (map_scale: px of radius per map unit)"
            )
        values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if values is None:
            raise MediaError(f"cannot read {path} as a {suffix[1:].upper()} map")
        if values.ndim != 2 or values.dtype not in (np.uint8, np.uint16, np.float32):
            raise MediaError(
                f"blur map {path} must be an 8- or 16-bit single-channel image, "
                f"got {values.dtype} with shape {values.shape}"
            )
        return values.astype(np.float32) * np.float32(map_scale)
    raise MediaError(f"blur map {path} must be a .npy or .png file (or an 8/16-bit .tif/.tiff)")


def write_blur_map(path: Path, radius: np.ndarray, map_scale: float | None = None) -> None:
    """Write H×W radii in px: ``.npy`` as float32 radii; an image map as ``round(radius / map_scale)``
    (16-bit, clipped to 0-65535; ``map_scale`` required)."""
    path = Path(path)
    radius = np.asarray(radius, dtype=np.float32)
    if radius.ndim != 2:
        raise MediaError(f"a blur map is H×W radii, got shape {radius.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, radius)
        return
    if suffix not in IMAGE_MAP_SUFFIXES:
        raise MediaError(f"blur map {path} must be a .npy, .png, .tif or .tiff file")
    if map_scale is None or not map_scale > 0:
        raise MediaError(f"blur map {path} is an image map: give map_scale > 0 (px of radius per map unit)")
    values = np.clip(np.rint(radius / np.float32(map_scale)), 0, 65535).astype(np.uint16)
    if not cv2.imwrite(str(path), values):
        raise MediaError(f"failed to write {path}")


def map_candidates(image_path: Path, map_folder: Path) -> list[Path]:
    """Where the map of ``image_path`` may be in ``map_folder``: its stem with each of :data:`MAP_SUFFIXES`."""
    return [Path(map_folder) / (Path(image_path).stem + suffix) for suffix in MAP_SUFFIXES]


def find_map(image_path: Path, map_folder: Path) -> Path:
    """The blur map in ``map_folder`` with the image's name stem (exactly one of :data:`MAP_SUFFIXES`)."""
    image_path, map_folder = Path(image_path), Path(map_folder)
    candidates = map_candidates(image_path, map_folder)
    found = [c for c in candidates if c.is_file() and c.resolve() != image_path.resolve()]
    if not found:
        names = [c.name for c in candidates]
        raise MediaError(
            f"no blur map for {image_path.name}: expected {', '.join(names[:-1])} or {names[-1]} in {map_folder}"
        )
    if len(found) > 1:
        raise MediaError(
            f"ambiguous blur map for {image_path.name}: both {found[0].name} and {found[1].name} in {map_folder}"
        )
    return found[0]


def list_maps(folder: Path) -> list[Path]:
    """The map files in ``folder`` (by suffix), unsorted: callers order them (e.g. naturally, by frame)."""
    return [p for p in Path(folder).iterdir() if p.suffix.lower() in MAP_SUFFIXES and p.is_file()]


def output_is_folder(output: str | os.PathLike[str]) -> bool:
    """An output names a folder when it exists as one or ends with a path separator."""
    text = os.fspath(output)
    return Path(text).is_dir() or text.endswith(("/", os.sep))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (models and checkpoints in reports and metadata)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
