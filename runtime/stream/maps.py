"""Blur maps per frame: a :class:`MapProvider` is called with each :class:`Frame` and returns its H×W radii (px).

Pairing is by ``frame.index`` in the source (not by the processed count), so
drops keep the pairing. Providers run on the inference thread. Forms accepted
by :func:`as_map_provider`:

* a number: a constant radius;
* an H×W array, an ``.npy`` file or a PNG (× ``map_scale``): one static map;
  if frames are resized, the map is resized with them and its radii multiplied
  by the scale (anisotropic resizing is refused);
* an N×H×W array or ``.npy`` (memory-mapped), or a folder of ``.npy``/PNG maps:
  map ``i`` for frame ``i``; a sequence that runs out names the frame;
* a 16-bit single-channel map video (``.mkv`` FFV1), radius = value × ``map_scale``;
* a callable ``fn(frame) -> H×W radii`` (``frame.image``, ``frame.index``);
* ``"estimate"`` / ``"estimate:K"`` / ``None``: ``runtime.estimate.estimate_blur_map`` per frame, or every
  K-th frame with the last map reused.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.constants import MAX_RADIUS_PX
from runtime.io import MediaError, list_maps, read_blur_map
from runtime.pyramid import DEFAULT_MAX_RADIUS_PX
from runtime.stream.errors import MapError


@dataclass
class Frame:
    """One captured frame.

    Attributes:
        index: position in the source (0, 1, …; counts dropped frames too).
        image: the frame as the deblurrer gets it (after resize/flip).
        captured_at: ``time.monotonic()`` when it was read.
        pts_s: presentation time in s (index / fps when the source has a rate), or None.
        source_size: (height, width) before resizing.
        source: the source's name.
    """

    index: int
    image: np.ndarray
    captured_at: float
    pts_s: float | None = None
    source_size: tuple[int, int] = (0, 0)
    source: str = ""


class MapProvider:
    """Base: ``provider(frame) -> float32 H×W radii`` for ``frame.image``'s size."""

    #: True for sequences paired by frame index (refused for live sources, which drop frames).
    per_frame: bool = False
    name: str = "blur map"

    def __call__(self, frame: Frame) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _check(radius: Any, frame: Frame, name: str, limit: float = np.inf) -> np.ndarray:
    """Validate a provider's map for ``frame``; returns float32 radii clipped to ``limit`` (the deblurrer's
    ``max_radius_px``)."""
    if not isinstance(radius, np.ndarray):
        raise MapError(
            f"{name} returned {type(radius).__name__}, expected an H×W array of radii in px",
            source=frame.source,
            frame=frame.index,
        )
    height, width = frame.image.shape[:2]
    if radius.ndim == 3 and radius.shape[2] == 1:
        radius = radius[..., 0]
    if radius.ndim != 2:
        raise MapError(
            f"{name} has shape {radius.shape}, expected H×W ({height}×{width})", source=frame.source, frame=frame.index
        )
    if radius.shape != (height, width):
        raise MapError(
            f"{name} is {radius.shape[1]}×{radius.shape[0]} px but the frame is {width}×{height} px",
            source=frame.source,
            frame=frame.index,
        )
    if not (np.issubdtype(radius.dtype, np.floating) or np.issubdtype(radius.dtype, np.integer)):
        raise MapError(f"{name} dtype {radius.dtype} is not a number type", source=frame.source, frame=frame.index)
    if radius.size == 0:
        raise MapError(f"{name} is empty", source=frame.source, frame=frame.index)
    radius = radius.astype(np.float32, copy=False)
    low, high = float(radius.min()), float(radius.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise MapError(f"{name} contains NaN or infinite radii", source=frame.source, frame=frame.index)
    if low < 0:
        raise MapError(f"{name} contains negative radii (min {low:.4g} px)", source=frame.source, frame=frame.index)
    if high > limit:  # deblur clips anyway; clipping here keeps it from warning every frame
        radius = np.minimum(radius, np.float32(limit))
    return radius


class ConstantMap(MapProvider):
    """The same radius (px) everywhere."""

    def __init__(self, radius_px: float) -> None:
        radius_px = float(radius_px)
        if not np.isfinite(radius_px) or radius_px < 0:
            raise MapError(f"constant blur radius must be a finite number >= 0, got {radius_px}")
        self.radius = radius_px
        self.name = f"constant blur map {radius_px:g} px"
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, frame: Frame) -> np.ndarray:
        shape = frame.image.shape[:2]
        if shape not in self._cache:
            self._cache[shape] = np.full(shape, self.radius, np.float32)
        return self._cache[shape]


def rescale_map(
    radius: np.ndarray, size: tuple[int, int], name: str = "blur map", tolerance: float = 0.01
) -> np.ndarray:
    """Resize an H×W radius map to ``size`` (h, w) and multiply the radii by the scale.

    Raises:
        MapError: the two axes would scale differently (by more than ``tolerance``).
    """
    h0, w0 = radius.shape
    h, w = size
    sx, sy = w / w0, h / h0
    if abs(sx - sy) > tolerance * max(sx, sy):
        raise MapError(
            f"{name} is {w0}×{h0} px and frames are {w}×{h} px: the aspect ratio differs "
            f"(scale {sx:.3g} × {sy:.3g}), so the radii cannot be rescaled"
        )
    interpolation = cv2.INTER_AREA if sx < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(radius.astype(np.float32), (w, h), interpolation=interpolation)
    return resized * np.float32((sx + sy) / 2)


class StaticMap(MapProvider):
    """One H×W map for every frame; rescaled (radii too) when frames were resized from the map's size."""

    def __init__(self, radius: np.ndarray, name: str = "static blur map") -> None:
        self.name = name
        radius = np.asarray(radius)
        dummy = Frame(
            -1,
            np.empty(radius.shape[:2] if radius.ndim >= 2 else (0, 0), np.uint8),
            0.0,
            source="",
            source_size=radius.shape[:2] if radius.ndim >= 2 else (0, 0),
        )
        try:
            self.radius = _check(radius, dummy, name)
        except MapError as error:
            raise MapError(error.detail) from None
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, frame: Frame) -> np.ndarray:
        shape = frame.image.shape[:2]
        if shape == self.radius.shape:
            return self.radius
        if frame.source_size == self.radius.shape:
            if shape not in self._cache:
                self._cache[shape] = rescale_map(self.radius, shape, self.name)
            return self._cache[shape]
        raise MapError(
            f"{self.name} is {self.radius.shape[1]}×{self.radius.shape[0]} px but the frame is "
            f"{shape[1]}×{shape[0]} px (source {frame.source_size[1]}×{frame.source_size[0]} px)",
            source=frame.source,
            frame=frame.index,
        )


class _SequenceBase(MapProvider):
    per_frame = True
    length: int

    def _map(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, frame: Frame) -> np.ndarray:
        if frame.index >= self.length:
            raise MapError(
                f"blur map sequence {self.name} ended at frame {frame.index} ({self.length} maps); "
                "the video has more frames",
                source=frame.source,
                frame=frame.index,
            )
        radius = self._map(frame.index)
        shape = frame.image.shape[:2]
        if radius.ndim == 2 and radius.shape != shape and frame.source_size == radius.shape:
            radius = rescale_map(np.asarray(radius, np.float32), shape, self.name)
        return radius


class MapArray(_SequenceBase):
    """An N×H×W array (e.g. an ``.npy`` opened with ``mmap_mode='r'``): map ``i`` for frame ``i``."""

    def __init__(self, maps: np.ndarray, name: str = "blur map array") -> None:
        if maps.ndim != 3:
            raise MapError(f"{name}: a map sequence must be N×H×W, got shape {maps.shape}")
        self.maps, self.length, self.name = maps, maps.shape[0], name

    def _map(self, index: int) -> np.ndarray:
        return np.asarray(self.maps[index])


def read_map_file(path: Path, map_scale: float | None) -> np.ndarray:
    """An ``.npy`` (radii in px; H×W or N×H×W, memory-mapped) or 8/16-bit PNG/TIFF (value × ``map_scale``) map
    file: :func:`runtime.io.read_blur_map`, its problems as :class:`MapError`."""
    try:
        return read_blur_map(path, map_scale, ndim=None, mmap=True)
    except MediaError as error:
        raise MapError(str(error)) from None


class MapFolder(_SequenceBase):
    """A folder of ``.npy`` or PNG maps in natural order: map ``i`` for frame ``i``."""

    def __init__(self, folder: Path, map_scale: float | None = None) -> None:
        from runtime.stream.sources import natural_key

        self.files = sorted(list_maps(folder), key=lambda p: natural_key(p.name))
        if not self.files:
            raise MapError(f"no .npy/.png maps in {folder}")
        self.length, self.name, self.map_scale = len(self.files), str(folder), map_scale
        if map_scale is None and any(p.suffix.lower() != ".npy" for p in self.files):
            raise MapError(f"{folder}: image maps need map_scale (--map-scale)")

    def _map(self, index: int) -> np.ndarray:
        return np.asarray(read_map_file(self.files[index], self.map_scale))


class MapVideo(_SequenceBase):
    """A 16-bit (or 8-bit) single-channel lossless video (FFV1 ``.mkv``): radius = value × ``map_scale``."""

    def __init__(self, path: Path, map_scale: float) -> None:
        if not path.is_file():
            raise MapError(f"map video not found: {path}")
        self.name, self.map_scale = str(path), float(map_scale)
        self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_CONVERT_RGB, 0])
        if not self._cap.isOpened():
            raise MapError(f"cannot open map video {path}")
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.length = int(count) if count and 0 < count < 1e9 else 1 << 62
        self._next = 0
        self._last: np.ndarray | None = None

    def _map(self, index: int) -> np.ndarray:
        if index < self._next - 1:
            raise MapError(f"map video {self.name} cannot go back to frame {index}", frame=index)
        while self._next <= index:
            ok, image = self._cap.read()
            if not ok:
                self.length = self._next
                raise MapError(
                    f"blur map video {self.name} ended at frame {self._next}; the video has more frames", frame=index
                )
            self._last, self._next = image, self._next + 1
        assert self._last is not None
        image = self._last
        if image.ndim == 3:
            if not (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])):
                raise MapError(f"map video {self.name} has colour frames; it must be single-channel", frame=index)
            image = image[..., 0]
        return image.astype(np.float32) * np.float32(self.map_scale)

    def close(self) -> None:
        self._cap.release()


class CallableMap(MapProvider):
    """``fn(frame) -> H×W radii``; any exception becomes a :class:`MapError` naming the frame."""

    def __init__(self, fn: Callable[[Frame], np.ndarray]) -> None:
        self.fn = fn
        self.name = f"blur map function {getattr(fn, '__name__', type(fn).__name__)}"

    def __call__(self, frame: Frame) -> np.ndarray:
        try:
            return self.fn(frame)
        except MapError:
            raise
        except Exception as error:  # noqa: BLE001 - user code: report it as a typed error
            raise MapError(
                f"{self.name} raised {type(error).__name__}: {error}", source=frame.source, frame=frame.index
            ) from error


def estimator_available() -> bool:
    """Whether ``runtime.estimate.estimate_blur_map`` exists in this installation."""
    if importlib.util.find_spec("runtime.estimate") is None:
        return False
    try:
        return callable(getattr(importlib.import_module("runtime.estimate"), "estimate_blur_map", None))
    except Exception:  # noqa: BLE001 - a half-written module counts as absent
        return False


class EstimatedMap(MapProvider):
    """Blur maps estimated from the frames: every ``every``-th frame, the last map reused in between."""

    def __init__(self, every: int = 1, channel_order: str = "bgr", max_radius_px: float = MAX_RADIUS_PX) -> None:
        self.channel_order = channel_order
        #: the estimator's limit (``estimate_blur_map(max_radius_px=)``): the deblurrer's, so large blur is seen
        self.max_radius_px = max_radius_px
        if not estimator_available():
            raise MapError(
                "blur_map='estimate' needs runtime.estimate.estimate_blur_map, which this installation "
                "does not have; pass a map (number, .npy, folder, map video or callable) instead"
            )
        if every < 1:
            raise MapError(f"estimate every K frames needs K >= 1, got {every}")
        self.fn = importlib.import_module("runtime.estimate").estimate_blur_map
        self.every, self.name = every, "estimated blur map"
        self._last: np.ndarray | None = None
        self._last_index = -(1 << 62)

    def __call__(self, frame: Frame) -> np.ndarray:
        if (
            self._last is None
            or frame.index - self._last_index >= self.every
            or self._last.shape != frame.image.shape[:2]
        ):
            image = frame.image
            if image.ndim == 2 or image.shape[2] == 1:  # the estimator takes colour frames
                image = np.repeat(image.reshape(image.shape[0], image.shape[1], 1), 3, axis=2)
            elif image.shape[2] == 4:
                image = image[..., :3]
            if image.dtype == np.uint16:
                image = image.astype(np.float32) / np.float32(65535)
            try:
                options = {"max_radius_px": self.max_radius_px} if self.max_radius_px != MAX_RADIUS_PX else {}
                self._last = np.asarray(
                    self.fn(np.ascontiguousarray(image), channel_order=self.channel_order, **options), np.float32
                )
            except Exception as error:  # noqa: BLE001
                raise MapError(
                    f"estimating the blur map failed: {type(error).__name__}: {error}",
                    source=frame.source,
                    frame=frame.index,
                ) from error
            self._last_index = frame.index
        return self._last


@dataclass
class CheckedMap(MapProvider):
    """Wraps a provider: validates every map and turns stray exceptions into :class:`MapError`."""

    inner: MapProvider
    name: str = field(default="")
    #: radii above this are clipped (the deblurrer's ``max_radius_px``)
    limit: float = DEFAULT_MAX_RADIUS_PX

    def __post_init__(self) -> None:
        self.name = self.name or self.inner.name
        self.per_frame = self.inner.per_frame

    def __call__(self, frame: Frame) -> np.ndarray:
        try:
            radius = self.inner(frame)
        except MapError as error:
            if error.frame is None:
                raise MapError(error.detail, source=frame.source, frame=frame.index) from None
            raise
        except Exception as error:  # noqa: BLE001
            raise MapError(f"{type(error).__name__}: {error}", source=frame.source, frame=frame.index) from error
        return _check(radius, frame, self.name, self.limit)

    def close(self) -> None:
        self.inner.close()


def as_map_provider(
    blur_map: Any,
    map_scale: float | None = None,
    channel_order: str = "bgr",
    max_radius_px: float = DEFAULT_MAX_RADIUS_PX,
) -> MapProvider:
    """A validated :class:`MapProvider` from any accepted form (see the module docstring).

    ``max_radius_px``: the deblurrer's limit: radii above it are clipped, and estimated maps reach up to it.

    Raises:
        MapError: the map cannot be used (missing file, wrong shape, NaN, negative, no estimator).
    """

    def checked(provider: MapProvider) -> CheckedMap:
        return CheckedMap(provider, limit=max_radius_px)

    if blur_map is None:  # as Deblurrer.deblur(image, None): estimate every frame's map
        return checked(EstimatedMap(1, channel_order, max_radius_px))
    if isinstance(blur_map, CheckedMap):
        return blur_map
    if isinstance(blur_map, MapProvider):
        return checked(blur_map)
    if isinstance(blur_map, (bool, np.bool_)):
        raise MapError(f"a blur map cannot be a bool ({blur_map})")
    if isinstance(blur_map, (int, float, np.integer, np.floating)):
        return checked(ConstantMap(float(blur_map)))
    if isinstance(blur_map, np.ndarray):
        if blur_map.ndim == 2:
            return checked(StaticMap(blur_map))
        if blur_map.ndim == 3:
            return checked(MapArray(blur_map))
        raise MapError(f"a blur map array must be H×W or N×H×W, got shape {blur_map.shape}")
    if isinstance(blur_map, (str, os.PathLike)):
        text = os.fspath(blur_map)
        match = re.fullmatch(r"estimate(?::(\d+))?", text)
        if match:
            return checked(EstimatedMap(int(match.group(1) or 1), channel_order, max_radius_px))
        try:
            return checked(ConstantMap(float(text)))
        except ValueError:
            pass
        path = Path(text)
        if path.is_dir():
            return checked(MapFolder(path, map_scale))
        if not path.is_file():
            raise MapError(f"blur map not found: {path}")
        suffix = path.suffix.lower()
        if suffix in (".mkv", ".avi", ".mp4", ".mov"):
            if map_scale is None:
                raise MapError(f"{path}: a map video needs map_scale (--map-scale: radius in px of one unit)")
            return checked(MapVideo(path, map_scale))
        radius = read_map_file(path, map_scale)
        if radius.ndim == 3:
            return checked(MapArray(radius, name=str(path)))
        return checked(StaticMap(np.asarray(radius), name=str(path)))
    if callable(blur_map):
        return checked(CallableMap(blur_map))
    raise MapError(f"cannot use a {type(blur_map).__name__} as a blur map")
