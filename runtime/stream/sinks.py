"""Frame sinks: video files, image sequences, ``null://``, GStreamer pipelines, Python callables.

The protocol (users may pass their own object)::

    write(image: np.ndarray) -> None   # one sharp frame, in order
    close() -> None                    # optional: finalise the output (always called, even after errors)

A callable is called as ``fn(result)`` with a :class:`~runtime.stream.pipeline.Deblurred`
(``result.sharp``, ``result.image``, ``result.index``, ``result.pts_s``).
Writers open on the first frame (they need its size); :func:`open_sink` checks
the codec and the folder before any frame is read, so a typo costs nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.stream.errors import SinkError
from runtime.stream.uri import Uri, UriError, parse_sink

#: codec name -> (FOURCC, lossless)
CODECS = {
    "ffv1": ("FFV1", True),
    "mp4v": ("mp4v", False),
    "mjpg": ("MJPG", False),
    "png": ("png ", True),
    "h264": ("avc1", False),
}
DEFAULT_CODEC = {".mkv": "ffv1", ".mp4": "mp4v", ".avi": "mjpg", ".mov": "mp4v", ".m4v": "mp4v"}
H264_HINT = (
    "this OpenCV has no H.264 encoder: use .mkv (FFV1, lossless) or .mp4 (mp4v), "
    "or pip install 'svbr-net[video]' (PyAV) for --output-codec h264"
)


class Sink:
    """Base class of the built-in sinks."""

    name: str = "sink"

    def write(self, image: np.ndarray) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Discards frames (benchmarks, the iterator form)."""

    name = "null://"

    def __init__(self) -> None:
        self.count = 0

    def write(self, image: np.ndarray) -> None:
        self.count += 1


def _probe_writer(path: Path, fourcc: str) -> bool:
    """Whether cv2 can open a writer with ``fourcc`` for ``path``'s container (writes a 16×16 temp file)."""
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        probe = Path(folder) / ("probe" + path.suffix)
        writer = cv2.VideoWriter(str(probe), cv2.VideoWriter_fourcc(*fourcc), 10.0, (16, 16))
        ok = writer.isOpened()
        if ok:
            writer.write(np.zeros((16, 16, 3), np.uint8))
        writer.release()
        return ok


class VideoFileSink(Sink):
    """``cv2.VideoWriter``: ``.mkv`` FFV1 (lossless, survives a kill), ``.mp4`` mp4v, ``.avi`` MJPG; or ``codec=``.

    Mono frames are written as single-channel video; uint16 frames need FFV1 (16-bit lossless).
    ``codec="h264"`` uses PyAV when installed: frames keep their source timestamps (variable
    frame rate), so a live recording with drops plays at the right speed; OpenCV writers use a
    constant rate (with drops they play fast).
    """

    #: whether ``write`` honours ``pts_s`` (else frames are spaced 1/fps apart)
    @property
    def keeps_timestamps(self) -> bool:
        return self._av is not None

    def __init__(self, path: str | os.PathLike[str], fps: float | None = None, codec: str = "auto") -> None:
        self.path = Path(path)
        self.name = str(path)
        suffix = self.path.suffix.lower()
        self.codec = DEFAULT_CODEC.get(suffix, "ffv1") if codec in ("auto", None) else codec.lower()
        if self.codec not in CODECS:
            raise SinkError(f"unknown codec {codec!r}; choose from auto, {', '.join(CODECS)}", source=self.name)
        if not self.path.parent.is_dir():
            raise SinkError(f"output folder {self.path.parent} does not exist", source=self.name)
        if not os.access(self.path.parent, os.W_OK):
            raise SinkError(f"output folder {self.path.parent} is not writable", source=self.name)
        self.fourcc = CODECS[self.codec][0]
        self._av = None
        if self.codec == "h264":  # PyAV (optional extra: pip install 'svbr-net[video]') first, else OpenCV's avc1
            try:
                import av  # noqa: F401

                self._av = "pending"
            except ImportError:
                if not _probe_writer(self.path, self.fourcc):
                    raise SinkError(H264_HINT, source=self.name) from None
        elif not _probe_writer(self.path, self.fourcc):
            raise SinkError(f"OpenCV cannot write {self.codec} into {suffix or 'this file'}", source=self.name)
        self.fps = fps if fps and fps > 0 else 30.0
        self._writer: Any = None
        self._shape: tuple[int, ...] | None = None
        self._dtype: np.dtype | None = None
        self.count = 0

    def _open(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        colour = image.ndim == 3 and image.shape[2] != 1
        if image.ndim == 3 and image.shape[2] not in (1, 3):
            raise SinkError(f"video files take 1- or 3-channel frames, got {image.shape[2]}", source=self.name)
        if image.dtype not in (np.uint8, np.uint16):
            raise SinkError(f"video files take uint8 or uint16 frames, got {image.dtype}", source=self.name)
        if self._av == "pending":
            self._open_av(width, height)
        else:
            params = [cv2.VIDEOWRITER_PROP_IS_COLOR, int(colour)]
            if image.dtype == np.uint16:
                if self.codec != "ffv1" or colour:
                    raise SinkError(
                        "16-bit frames need mono frames in .mkv (FFV1), or an image pattern (.png/.tif)",
                        source=self.name,
                    )
                params += [cv2.VIDEOWRITER_PROP_DEPTH, cv2.CV_16U]
            self._writer = cv2.VideoWriter(
                str(self.path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height), params
            )
            if not self._writer.isOpened():
                raise SinkError(f"cannot open a {self.codec} writer for {width}×{height}", source=self.name)
        self._shape, self._dtype = image.shape, image.dtype

    def _open_av(self, width: int, height: int) -> None:
        from fractions import Fraction

        import av

        container = av.open(str(self.path), "w")
        stream = container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        stream.codec_context.time_base = Fraction(1, 1000)  # pts in ms: the source's timing survives drops
        self._writer = (container, stream)
        self._last_pts = -1

    def write(self, image: np.ndarray, pts_s: float | None = None) -> None:
        """Write one frame; ``pts_s`` (source time in s) sets its timestamp in H.264 (PyAV) files."""
        if self._writer is None:
            self._open(image)
        elif image.shape != self._shape or image.dtype != self._dtype:
            raise SinkError(
                f"frame {image.shape} {image.dtype} differs from the first frame {self._shape} {self._dtype}",
                source=self.name,
                frame=self.count,
            )
        if isinstance(self._writer, tuple):
            import av

            container, stream = self._writer
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            from fractions import Fraction

            pts = round(pts_s * 1000) if pts_s is not None else round(self.count * 1000 / self.fps)
            frame.pts, frame.time_base = max(pts, self._last_pts + 1), Fraction(1, 1000)
            self._last_pts = frame.pts
            for packet in stream.encode(frame):
                container.mux(packet)
        else:
            self._writer.write(np.ascontiguousarray(image))
        self.count += 1

    def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if isinstance(writer, tuple):
            container, stream = writer
            for packet in stream.encode():
                container.mux(packet)
            container.close()
        else:
            writer.release()


class ImageSequenceSink(Sink):
    """Numbered image files: ``pattern % index`` (``out/%06d.png``), index = the source frame index."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.name = pattern
        folder = Path(pattern).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SinkError(f"cannot create the output folder: {error}", source=pattern) from None
        if not os.access(folder, os.W_OK):
            raise SinkError(f"output folder {folder} is not writable", source=pattern)
        if not cv2.haveImageWriter(pattern % 0):
            raise SinkError(f"OpenCV cannot write {Path(pattern).suffix} images", source=pattern)
        self.count = 0

    def write(self, image: np.ndarray, index: int | None = None) -> None:
        path = self.pattern % (self.count if index is None else index)
        if not cv2.imwrite(path, image):
            raise SinkError(f"cannot write {path}", source=self.name, frame=index)
        self.count += 1


class GstPipeSink(Sink):
    """Raw BGR frames into ``gst-launch-1.0 fdsrc ! rawvideoparse … ! <pipeline>`` (started on the first frame)."""

    def __init__(self, pipeline: str, fps: float | None = None, name: str | None = None) -> None:
        self.name = name or f"gst:{pipeline}"
        self.exe = shutil.which("gst-launch-1.0")
        if self.exe is None:
            raise SinkError(
                "gst-launch-1.0 not found; install GStreamer (apt-get install gstreamer1.0-tools "
                "gstreamer1.0-plugins-base)",
                source=self.name,
            )
        elements = [e.strip() for e in pipeline.split("!")]
        if elements and elements[0].split()[0:1] == ["appsrc"]:
            elements = elements[1:]
        self.pipeline = " ! ".join(elements)
        self.fps = fps if fps and fps > 0 else 30.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self.count = 0

    def write(self, image: np.ndarray) -> None:
        if image.dtype != np.uint8:
            raise SinkError(f"gst: sinks take uint8 frames, got {image.dtype}", source=self.name)
        if image.ndim == 2 or image.shape[2] == 1:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self._proc is None:
            import shlex
            from fractions import Fraction

            height, width = image.shape[:2]
            rate = Fraction(self.fps).limit_denominator(1001)
            head = (
                f"fdsrc fd=0 ! rawvideoparse width={width} height={height} format=bgr "
                f"framerate={rate.numerator}/{rate.denominator} ! "
            )
            self._shape = image.shape
            self._proc = subprocess.Popen(
                [self.exe, "-q", "-e", *shlex.split(head + self.pipeline)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            threading.Thread(target=self._drain, daemon=True).start()
        if image.shape != self._shape:
            raise SinkError(f"frame size {image.shape} differs from the first {self._shape}", source=self.name)
        # rawvideoparse expects GStreamer's row stride (rows padded to 4 bytes)
        height, width = image.shape[:2]
        stride = -(-width * 3 // 4) * 4
        data = np.ascontiguousarray(image).reshape(height, width * 3)
        if stride != width * 3:
            data = np.pad(data, ((0, 0), (0, stride - width * 3)))
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(data.tobytes())
        except (BrokenPipeError, OSError):
            self._proc.wait(timeout=5)
            raise SinkError(
                f"gst-launch-1.0 exited with {self._proc.returncode}: {' | '.join(self._stderr[-3:])}",
                source=self.name,
                frame=self.count,
            ) from None
        self.count += 1

    def _drain(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in iter(self._proc.stderr.readline, b""):
            self._stderr.append(raw.decode(errors="replace").rstrip())
            del self._stderr[:-20]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
        except OSError:
            pass
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise SinkError(
                "gst-launch-1.0 did not finish within 20 s after the last frame", source=self.name
            ) from None
        if rc != 0:
            raise SinkError(f"gst-launch-1.0 exited with {rc}: {' | '.join(self._stderr[-3:])}", source=self.name)


class CallbackSink(Sink):
    """Calls ``fn(result)`` for every deblurred frame (a :class:`~runtime.stream.pipeline.Deblurred`)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.wants_result = True


class ObjectSink(Sink):
    """Adapts a user object with ``write(image)`` (and optionally ``close()``/``release()``, ``name``)."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj
        self.name = str(getattr(obj, "name", None) or type(obj).__name__)

    def write(self, image: np.ndarray) -> None:
        self.obj.write(image)

    def close(self) -> None:
        close = getattr(self.obj, "close", None) or getattr(self.obj, "release", None)
        if callable(close):
            close()


def open_sink(sink: Any, *, fps: float | None = None, codec: str = "auto") -> Sink:
    """A :class:`Sink` for a name (file, folder, pattern, ``null://``, ``gst:``), a callable or a user object.

    Raises:
        SinkError: unknown name, unwritable folder, codec this OpenCV cannot write.
    """
    if sink is None:
        return NullSink()
    if isinstance(sink, Sink):
        return sink
    if isinstance(sink, (str, os.PathLike)):
        try:
            uri: Uri = parse_sink(sink)
        except UriError as error:
            raise SinkError(str(error)) from error
        if uri.kind == "null":
            return NullSink()
        if uri.kind == "gst":
            return GstPipeSink(uri.location, fps=fps, name=uri.text)
        if uri.kind == "images":
            return ImageSequenceSink(uri.location)
        return VideoFileSink(uri.location, fps=fps, codec=codec)
    if hasattr(sink, "write") and callable(sink.write):
        return ObjectSink(sink)
    if callable(sink):
        return CallbackSink(sink)
    raise SinkError(
        f"cannot use a {type(sink).__name__} as a sink: pass a file/folder name, null://, gst:…, "
        "a callable or an object with write()",
        source=repr(sink)[:60],
    )
