"""Frame sources: video files, image sequences, V4L2, network streams, GStreamer, a synthetic test source.

Every source implements the small protocol the pipeline needs (users may pass
their own object with the same methods, or any iterable of frames)::

    read() -> np.ndarray | None   # the next frame (an owned array); None at end of stream
    close() -> None               # optional
    is_live: bool                 # optional: frames arrive on their own clock (default False)
    fps: float | None             # optional: frames per second, for writers
    name: str                     # optional: used in error messages

``read`` raises :class:`SourceError` (naming the source and frame) when it
fails; built-in sources bound every blocking read with a timeout.
"""

from __future__ import annotations

import glob as globmod
import os
import re
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.stream.errors import SourceError
from runtime.stream.uri import IMAGE_SUFFIXES, Uri, UriError, parse_source


def natural_key(text: str) -> list[Any]:
    """Sort key that orders ``img2`` before ``img10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def cv2_has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines (pip wheels cannot)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class Source:
    """Base class of the built-in sources (see the module docstring for the protocol)."""

    name: str = "source"
    is_live: bool = False
    fps: float | None = None
    frame_count: int | None = None

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- synthetic ------------------------------------------------------------------


def encode_index(image: np.ndarray, index: int) -> None:
    """Write ``index`` into the frame's top-left 8×24 px (three 8×8 blocks, base-256 digits, all channels)."""
    top = 65535 if image.dtype == np.uint16 else 255
    for block in range(3):
        value = (index >> (8 * block)) & 0xFF
        image[0:8, 8 * block : 8 * block + 8] = value * (top // 255)


def decode_index(image: np.ndarray) -> int:
    """Inverse of :func:`encode_index` (exact for lossless frames; rounds block means otherwise)."""
    scale = 257.0 if image.dtype == np.uint16 else 1.0
    index = 0
    for block in range(3):
        value = int(round(float(image[1:7, 8 * block + 1 : 8 * block + 7].mean()) / scale))
        index |= min(max(value, 0), 255) << (8 * block)
    return index


class TestSource(Source):
    """``testsrc://?size=WxH&fps=F&frames=N&live=0|1&channels=1|3&depth=8|16``: a moving pattern carrying its index.

    ``frames`` < 0 (or absent with ``live=1``) = endless. ``live=1`` paces frames by a monotonic clock like a
    camera: a slow reader misses frames instead of slowing the source.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        size: tuple[int, int] = (160, 120),
        fps: float = 30.0,
        frames: int = 100,
        live: bool = False,
        seed: int = 0,
        channels: int = 3,
        depth: int = 8,
        name: str = "testsrc://",
    ) -> None:
        self.width, self.height = size
        self.fps = float(fps)
        self.frame_count = frames if frames >= 0 else None
        self.is_live = live
        self.channels = channels
        self.depth = depth
        self.name = name
        rng = np.random.default_rng(seed)
        self._texture = rng.integers(0, 256, (self.height, self.width + 64, 3), dtype=np.uint8)
        self._texture = cv2.GaussianBlur(self._texture, (0, 0), 1.5)
        self._next = 0
        self._t0: float | None = None

    @classmethod
    def from_uri(cls, uri: Uri) -> TestSource:
        o = uri.options
        w, h = (int(v) for v in o.get("size", "160x120").lower().split("x"))
        live = uri.is_live
        frames = int(o.get("frames", -1 if live else 100))
        return cls(
            (w, h),
            float(o.get("fps", 30)),
            frames,
            live,
            int(o.get("seed", 0)),
            int(o.get("channels", 3)),
            int(o.get("depth", 8)),
            name=uri.text or "testsrc://",
        )

    def make_frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (deterministic)."""
        shift = index % 64
        frame = np.ascontiguousarray(self._texture[:, shift : shift + self.width])
        if self.channels == 1:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if self.depth == 16:
            frame = frame.astype(np.uint16) * 257
        encode_index(frame, index)
        return frame

    def read(self) -> np.ndarray | None:
        if self.frame_count is not None and self._next >= self.frame_count:
            return None
        if self.is_live:
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            due = self._t0 + self._next / self.fps
            if due > now:
                time.sleep(due - now)
            else:  # a camera does not wait: frames whose time has passed are lost
                missed = int((now - self._t0) * self.fps) - self._next
                if missed > 0:
                    self._next += missed
                    self.missed = getattr(self, "missed", 0) + missed
        frame = self.make_frame(self._next)
        self._next += 1
        return frame

    def rewind(self) -> None:
        """Start again from frame 0 (``--loop``)."""
        self._next, self._t0 = 0, None


# --- OpenCV VideoCapture: files, V4L2, network ----------------------------------


class CaptureSource(Source):
    """A ``cv2.VideoCapture``: a video file, a V4L2 device or a network stream (FFmpeg), with timeouts."""

    def __init__(
        self,
        uri: Uri,
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ) -> None:
        self.uri = uri
        self.name = uri.text or uri.location
        self.is_live = uri.kind in ("v4l2", "network")
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(read_timeout_s * 1000),
        ]
        if uri.kind == "video":
            path = Path(uri.location)
            if not path.is_file():
                raise SourceError("video file not found", source=self.name)
            self._cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)
        elif uri.kind == "v4l2":
            device = uri.location
            match = re.fullmatch(r"/dev/video(\d+)", device)
            if not os.path.exists(device):
                raise SourceError("no such V4L2 device", source=self.name)
            target: Any = int(match.group(1)) if match else device
            self._cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
            for prop, value in (
                (cv2.CAP_PROP_FRAME_WIDTH, width),
                (cv2.CAP_PROP_FRAME_HEIGHT, height),
                (cv2.CAP_PROP_FPS, fps),
            ):
                if value:
                    self._cap.set(prop, value)
        else:
            if uri.location.startswith(("rtsp://", "rtsps://")) and "OPENCV_FFMPEG_CAPTURE_OPTIONS" not in os.environ:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
            self._cap = cv2.VideoCapture(uri.location, cv2.CAP_FFMPEG, params)
        if not self._cap.isOpened():
            raise SourceError(
                f"cannot open (not a readable video, or nothing answered within {open_timeout_s:g} s)"
                if uri.kind == "network"
                else "cannot open as a video (missing codec or not a video)",
                source=self.name,
            )
        fps_value = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps_value if fps_value and np.isfinite(fps_value) and 0 < fps_value < 1000 else None
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)
        self.frame_count = int(count) if uri.kind == "video" and count and 0 < count < 1e9 else None
        if uri.kind == "video" and self.frame_count is None:
            self.is_live = False
        self.read_timeout_s = read_timeout_s
        self._index = 0
        self.warnings: list[str] = []

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok or frame is None:
            if self.is_live:
                raise SourceError(
                    f"stream ended or sent no frame for {self.read_timeout_s:g} s", source=self.name, frame=self._index
                )
            if self._index == 0:
                raise SourceError("no frame could be decoded (garbage or empty file)", source=self.name, frame=0)
            if self.frame_count and self._index < self.frame_count:
                self.warnings.append(
                    f"{self.name}: source ended after {self._index} of {self.frame_count} frames "
                    "(truncated or damaged file)"
                )
            return None
        self._index += 1
        return frame

    def rewind(self) -> None:
        """Start again from the first frame (``--loop``)."""
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0):
            raise SourceError("cannot rewind for --loop", source=self.name)
        self._index = 0

    def close(self) -> None:
        self._cap.release()


# --- image sequences ------------------------------------------------------------


def list_images(uri: Uri) -> list[Path]:
    """The files of an image source in reading order (natural sort)."""
    location = uri.location
    if "single" in uri.options:
        return [Path(location)]
    if "folder" in uri.options:
        folder = Path(location)
        if not folder.is_dir():
            raise SourceError("folder not found", source=uri.text)
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    elif "pattern" in uri.options:
        regex = re.compile(
            "^" + re.sub(r"%0?(\d*)d", r"(\\d+)", re.escape(Path(location).name).replace(r"\%", "%")) + "$"
        )
        folder = Path(location).parent
        files = [p for p in folder.iterdir() if regex.match(p.name)] if folder.is_dir() else []
        files.sort(key=lambda p: int(regex.match(p.name).group(1)))  # type: ignore[union-attr]
        return files
    else:
        files = [Path(p) for p in globmod.glob(location) if Path(p).is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


class ImageSequenceSource(Source):
    """One image, a folder, a glob or a ``%06d`` pattern, read in natural order (``IMREAD_UNCHANGED``)."""

    def __init__(self, uri: Uri, loop: int = 0) -> None:
        self.name = uri.text or uri.location
        self.files = list_images(uri)
        if not self.files:
            raise SourceError("no images found", source=self.name)
        if "single" in uri.options and not self.files[0].is_file():
            raise SourceError("image file not found", source=self.name)
        self.frame_count = len(self.files)
        self._i = 0

    def read(self) -> np.ndarray | None:
        if self._i >= len(self.files):
            return None
        path = self.files[self._i]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(f"cannot read {path} as an image", source=self.name, frame=self._i)
        self._i += 1
        return image

    def rewind(self) -> None:
        """Start again from the first image (``--loop``)."""
        self._i = 0


# --- GStreamer -------------------------------------------------------------------


def _strip_appsink(pipeline: str) -> str:
    """Drop a trailing ``! appsink …`` element: the subprocess path ends the pipeline itself."""
    elements = [e.strip() for e in pipeline.split("!")]
    if elements and elements[-1].split()[0:1] == ["appsink"]:
        elements = elements[:-1]
    return " ! ".join(elements)


_CAPS = re.compile(
    r"GstFdSink:\w+\.GstPad:sink: caps = video/x-raw, format=\(string\)BGR, width=\(int\)(\d+), "
    r"height=\(int\)(\d+)(?:.*?framerate=\(fraction\)(\d+)/(\d+))?"
)


class GstPipeSource(Source):
    """A GStreamer pipeline run by ``gst-launch-1.0``, raw BGR frames read from a pipe (no PyGObject needed).

    The pipeline gets ``! videoconvert ! video/x-raw,format=BGR ! fdsink`` appended (a trailing
    ``appsink`` is removed); the frame size is taken from the negotiated caps (``-v``).
    """

    def __init__(
        self,
        pipeline: str,
        *,
        name: str | None = None,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        is_live: bool = False,
    ) -> None:
        exe = shutil.which("gst-launch-1.0")
        self.name = name or f"gst:{pipeline}"
        if exe is None:
            raise SourceError(
                "gst-launch-1.0 not found and this OpenCV has no GStreamer; install GStreamer "
                "(apt-get install gstreamer1.0-tools gstreamer1.0-plugins-base)",
                source=self.name,
            )
        self.is_live = is_live
        self.read_timeout_s = read_timeout_s
        body = _strip_appsink(pipeline)
        read_fd, write_fd = os.pipe()
        full = f"{body} ! videoconvert ! video/x-raw,format=BGR ! fdsink fd={write_fd} sync=false"
        self._proc = subprocess.Popen(
            [exe, "-v", *_split_pipeline(full)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        self._fd = read_fd
        self._log: list[str] = []
        self._caps = threading.Event()
        self.width = self.height = 0
        self.fps = None
        self._stdout_thread = threading.Thread(target=self._read_text, args=(self._proc.stdout, True), daemon=True)
        self._stderr_thread = threading.Thread(target=self._read_text, args=(self._proc.stderr, False), daemon=True)
        self._stdout_thread.start()
        self._stderr_thread.start()
        deadline = time.monotonic() + open_timeout_s
        while not self._caps.is_set():
            if self._proc.poll() is not None:
                time.sleep(0.05)
                if not self._caps.is_set():
                    self.close()
                    raise SourceError(
                        f"gst-launch-1.0 failed (exit {self._proc.returncode}): {self._tail()}", source=self.name
                    )
            if time.monotonic() > deadline:
                self.close()
                raise SourceError(
                    f"no video caps negotiated within {open_timeout_s:g} s: {self._tail()}", source=self.name
                )
            self._caps.wait(0.05)
        self._stride = -(-self.width * 3 // 4) * 4  # GStreamer pads BGR rows to 4 bytes
        self._index = 0

    def _read_text(self, stream: Any, parse: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if parse and not self._caps.is_set():
                match = _CAPS.search(line)
                if match:
                    self.width, self.height = int(match.group(1)), int(match.group(2))
                    if match.group(3) and int(match.group(4)) > 0 and int(match.group(3)) > 0:
                        self.fps = int(match.group(3)) / int(match.group(4))
                    self._caps.set()
                    continue
            if not parse or "ERROR" in line or "WARNING" in line:
                self._log.append(line)
                del self._log[:-20]

    def _tail(self) -> str:
        time.sleep(0.05)
        return " | ".join(line for line in self._log[-3:] if line) or "no message"

    def read(self) -> np.ndarray | None:
        size = self._stride * self.height
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            ready, _, _ = select.select([self._fd], [], [], self.read_timeout_s)
            if not ready:
                raise SourceError(f"no frame for {self.read_timeout_s:g} s", source=self.name, frame=self._index)
            n = os.readv(self._fd, [view[got:]])
            if n == 0:
                if got:
                    raise SourceError(
                        f"pipeline ended inside a frame ({got} of {size} bytes)", source=self.name, frame=self._index
                    )
                rc = self._proc.wait(timeout=5)
                if rc != 0:
                    raise SourceError(
                        f"gst-launch-1.0 exited with {rc}: {self._tail()}", source=self.name, frame=self._index
                    )
                return None
            got += n
        self._index += 1
        frame = np.frombuffer(buffer, np.uint8).reshape(self.height, self._stride)[:, : self.width * 3]
        return (
            frame.reshape(self.height, self.width, 3).copy()
            if self._stride != self.width * 3
            else np.frombuffer(buffer, np.uint8).reshape(self.height, self.width, 3)
        )

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=2)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _split_pipeline(pipeline: str) -> list[str]:
    """Arguments for gst-launch-1.0 (it re-joins them); quotes are honoured."""
    import shlex

    return shlex.split(pipeline)


class Cv2GstSource(CaptureSource):
    """A GStreamer pipeline through OpenCV's own GStreamer backend (JetPack's OpenCV has it)."""

    def __init__(self, pipeline: str, *, name: str, is_live: bool, read_timeout_s: float = 5.0) -> None:  # noqa: D107
        self.name = name
        self.is_live = is_live
        self.uri = Uri("gst", pipeline, {}, name)
        if "appsink" not in pipeline:
            pipeline += " ! videoconvert ! video/x-raw,format=BGR ! appsink"
        self._cap = cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        if not self._cap.isOpened():
            raise SourceError("OpenCV could not start the GStreamer pipeline", source=name)
        fps_value = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps_value if fps_value and 0 < fps_value < 1000 else None
        self.frame_count = None
        self.read_timeout_s = read_timeout_s
        self._index = 0
        self.warnings = []

    def read(self) -> np.ndarray | None:
        ok, frame = self._cap.read()
        if not ok:
            if self.is_live:
                raise SourceError("GStreamer pipeline stopped delivering frames", source=self.name, frame=self._index)
            return None
        self._index += 1
        return frame


# --- user objects ------------------------------------------------------------------


class IterableSource(Source):
    """Any iterable (a list, a generator) of frames."""

    def __init__(self, frames: Iterable[np.ndarray], name: str | None = None) -> None:
        self._it: Iterator[np.ndarray] = iter(frames)
        self.name = name or type(frames).__name__
        self.frame_count = len(frames) if hasattr(frames, "__len__") else None  # type: ignore[arg-type]

    def read(self) -> np.ndarray | None:
        return next(self._it, None)


class ObjectSource(Source):
    """Adapts a user object with ``read()`` (and optionally ``close``, ``is_live``, ``fps``, ``name``)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.name = str(getattr(obj, "name", None) or type(obj).__name__)
        self.is_live = bool(getattr(obj, "is_live", False))
        fps = getattr(obj, "fps", None)
        self.fps = float(fps) if isinstance(fps, (int, float)) and fps > 0 else None

    def read(self) -> np.ndarray | None:
        item = self.obj.read()
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (bool, np.bool_)):
            ok, frame = item  # cv2.VideoCapture-like (ok, frame)
            return frame if ok else None
        return item

    def close(self) -> None:
        close = getattr(self.obj, "close", None) or getattr(self.obj, "release", None)
        if callable(close):
            close()


def open_source(
    source: Any,
    *,
    open_timeout_s: float = 10.0,
    read_timeout_s: float = 5.0,
    loop: int = 0,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
) -> Source:
    """A :class:`Source` for a name (see :mod:`runtime.stream.uri`), a user object or an iterable of frames.

    Raises:
        SourceError: it cannot be opened (missing file, garbage, nothing answering, bare integer).
    """
    if isinstance(source, Source):
        return source
    if isinstance(source, (str, os.PathLike, int)) and not isinstance(source, bool):
        try:
            uri = parse_source(source)
        except UriError as error:
            raise SourceError(str(error)) from error
        if uri.kind == "test":
            return TestSource.from_uri(uri)
        if uri.kind == "images":
            return ImageSequenceSource(uri)
        if uri.kind in ("gst", "csi"):
            if cv2_has_gstreamer():
                return Cv2GstSource(uri.location, name=uri.text, is_live=uri.is_live, read_timeout_s=read_timeout_s)
            return GstPipeSource(
                uri.location,
                name=uri.text,
                open_timeout_s=open_timeout_s,
                read_timeout_s=read_timeout_s,
                is_live=uri.is_live,
            )
        return CaptureSource(
            uri, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s, width=width, height=height, fps=fps
        )
    if hasattr(source, "read") and callable(source.read):
        return ObjectSource(source)
    if isinstance(source, np.ndarray):  # one frame (H×W, H×W×C), or a stack of frames (N×H×W×C)
        if source.ndim == 4:
            return IterableSource(list(source), name="ndarray")
        return IterableSource([source], name="ndarray")
    if hasattr(source, "__iter__"):
        return IterableSource(source)
    raise SourceError(
        f"cannot use a {type(source).__name__} as a source: pass a name (file, folder, URI), an object "
        "with read(), or an iterable of frames",
        source=repr(source)[:60],
    )
