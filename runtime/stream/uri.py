"""Parse source and sink names (jetson-utils style URIs) into a :class:`Uri`; pure, no I/O except ``exists``.

Sources:

=================================================  ===========
form                                               kind
=================================================  ===========
``clip.mp4`` / ``file://clip.mkv``                 ``video``
``photo.png``, ``frames/``, ``"frames/*.png"``,    ``images``
``frames/img_%06d.png``
``/dev/video0``, ``v4l2:///dev/video0``            ``v4l2``
``rtsp://…``, ``rtsps://``, ``http(s)://``,        ``network``
``udp://``, ``tcp://``, ``rtmp://``
``gst:videotestsrc ! … ! appsink``                 ``gst``
``csi://0``                                        ``csi`` (a ``gst`` pipeline)
``testsrc://?size=160x120&fps=30&frames=100&live=1`` ``test``
=================================================  ===========

Sinks: a video path (``.mkv`` FFV1 by default, ``.mp4`` mp4v, ``.avi`` MJPG), an
image file pattern (``out/%06d.png``) or a folder (``out/`` -> ``out/%06d.png``),
``null://``, ``gst:… ! filesink location=x.ogg`` (raw BGR frames are fed in).

A bare integer is refused: it means ``csi://N`` in jetson-utils and webcam N in
OpenCV and Ultralytics.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from runtime.io import IMAGE_SUFFIXES

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".mkv",
        ".avi",
        ".mov",
        ".m4v",
        ".webm",
        ".flv",
        ".ogv",
        ".ogg",
        ".ts",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".y4m",
        ".h264",
        ".h265",
        ".mjpeg",
    }
)
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https", "udp", "tcp", "rtmp", "rtp", "srt"})
_PRINTF = re.compile(r"%0?\d*d")


class UriError(ValueError):
    """A source or sink name that cannot be understood (a bad option, exit code 2 in the CLI)."""


@dataclass(frozen=True)
class Uri:
    """A parsed name. ``kind``: see the module table; ``location``: path, URL or pipeline; ``options``: query."""

    kind: str
    location: str
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""

    @property
    def is_live(self) -> bool:
        """Whether frames arrive on their own clock (cameras, network, live test source)."""
        if self.kind in ("v4l2", "network", "csi"):
            return True
        if self.kind == "test":
            return self.options.get("live", "0") not in ("0", "false", "no", "")
        if self.kind == "gst":
            return (
                "is-live=true" in self.location.replace(" ", "")
                or "v4l2src" in self.location
                or "nvarguscamerasrc" in self.location
                or "rtspsrc" in self.location
            )
        return False


def _refuse_integer(text: str) -> None:
    if re.fullmatch(r"\s*-?\d+\s*", text):
        n = text.strip()
        raise UriError(
            f"ambiguous source {n!r}: a bare number means a CSI camera in jetson-utils but a webcam in OpenCV; "
            f"write csi://{n} or /dev/video{n} (v4l2:///dev/video{n})"
        )


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """The ``nvarguscamerasrc`` pipeline behind ``csi://N`` (Jetson; JetsonHacks' CSI-Camera string)."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
        f"framerate={fps}/1 ! nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! videoconvert ! "
        "video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"
    )


def parse_source(name: str | os.PathLike[str]) -> Uri:
    """Parse a source name; raises :class:`UriError` for an unusable one."""
    if isinstance(name, int) and not isinstance(name, bool):
        _refuse_integer(str(name))
    text = os.fspath(name)
    if not isinstance(text, str) or not text.strip():
        raise UriError(f"empty source name: {name!r}")
    _refuse_integer(text)
    if text.startswith("gst:") and not text.startswith("gst://"):
        pipeline = text[4:].strip()
        if not pipeline:
            raise UriError("gst: needs a pipeline, e.g. gst:videotestsrc num-buffers=30 ! appsink")
        return Uri("gst", pipeline, {}, text)
    if text.startswith("gst://"):
        return parse_source("gst:" + text[6:])
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", text)
    if match:
        scheme, rest = match.group(1).lower(), match.group(2)
        parts = urlsplit(text)
        options = dict(parse_qsl(parts.query))
        if scheme == "file":
            return _classify_path(rest.split("?")[0], text)
        if scheme == "v4l2":
            device = rest.split("?")[0] or "/dev/video0"
            if re.fullmatch(r"\d+", device):
                device = f"/dev/video{device}"
            return Uri("v4l2", device, options, text)
        if scheme == "csi":
            sensor = rest.split("?")[0] or "0"
            if not re.fullmatch(r"\d+", sensor):
                raise UriError(f"csi://N needs a sensor number, got {text!r}")
            kw = {k: int(options[k]) for k in ("width", "height", "fps", "flip") if k in options}
            return Uri("csi", csi_pipeline(int(sensor), **kw), {"sensor": sensor, **options}, text)
        if scheme == "testsrc":
            _check_test_options(options, text)
            return Uri("test", "testsrc", options, text)
        if scheme in NETWORK_SCHEMES:
            return Uri("network", text, options, text)
        if scheme == "display":
            raise UriError("display:// is not supported (headless OpenCV); write to a file, null:// or gst:")
        raise UriError(f"unknown source scheme {scheme!r} in {text!r}")
    if text.startswith("/dev/video"):
        return Uri("v4l2", text, {}, text)
    return _classify_path(text, text)


def _check_test_options(options: dict[str, str], text: str) -> None:
    known = {"size", "fps", "frames", "live", "seed", "channels", "depth"}
    unknown = set(options) - known
    if unknown:
        raise UriError(f"unknown testsrc option(s) {sorted(unknown)} in {text!r}; known: {sorted(known)}")
    try:
        if "size" in options:
            w, h = options["size"].lower().split("x")
            if int(w) < 1 or int(h) < 1:
                raise ValueError
        if "fps" in options and not float(options["fps"]) > 0:
            raise ValueError
        if "frames" in options:
            int(options["frames"])
        if "channels" in options and int(options["channels"]) not in (1, 3):
            raise ValueError
        if "depth" in options and int(options["depth"]) not in (8, 16):
            raise ValueError
    except ValueError:
        raise UriError(
            f"bad testsrc options in {text!r}: size=WxH, fps>0, frames=N, channels=1|3, depth=8|16"
        ) from None


def _classify_path(path: str, text: str) -> Uri:
    if any(ch in path for ch in "*?[") and not Path(path).exists():
        return Uri("images", path, {"glob": "1"}, text)
    if _PRINTF.search(Path(path).name):
        suffix = Path(path).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return Uri("images", path, {"pattern": "1"}, text)
    p = Path(path)
    if p.is_dir() or path.endswith(("/", os.sep)):
        return Uri("images", path, {"folder": "1"}, text)
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return Uri("images", path, {"single": "1"}, text)
    if suffix in VIDEO_SUFFIXES or p.is_file():
        return Uri("video", path, {}, text)
    raise UriError(f"cannot tell what {text!r} is: not an existing file or folder and no known video/image suffix")


def parse_sink(name: str | os.PathLike[str]) -> Uri:
    """Parse a sink name; raises :class:`UriError` for an unusable one."""
    text = os.fspath(name)
    if not isinstance(text, str) or not text.strip():
        raise UriError(f"empty output name: {name!r}")
    _refuse_integer(text)
    if text in ("null://", "null", "null:"):
        return Uri("null", "", {}, text)
    if text.startswith("gst:"):
        pipeline = text[4:].lstrip("/").strip()
        if not pipeline:
            raise UriError(
                "gst: needs a pipeline, e.g. gst:videoconvert ! theoraenc ! oggmux ! filesink location=o.ogg"
            )
        return Uri("gst", pipeline, {}, text)
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", text)
    if match:
        scheme = match.group(1).lower()
        if scheme == "file":
            return parse_sink(match.group(2))
        raise UriError(f"unsupported output scheme {scheme!r} in {text!r}; use a file, a folder, null:// or gst:")
    p = Path(text)
    suffix = p.suffix.lower()
    if _PRINTF.search(p.name):
        if suffix not in IMAGE_SUFFIXES:
            raise UriError(f"image pattern {text!r} needs an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return Uri("images", text, {"pattern": "1"}, text)
    if p.is_dir() or text.endswith(("/", os.sep)):
        return Uri("images", os.path.join(text, "%06d.png"), {"pattern": "1"}, text)
    if suffix in IMAGE_SUFFIXES:
        raise UriError(
            f"a stream writes many frames: use a pattern like {p.with_name(p.stem + '_%06d' + p.suffix)} "
            "or a folder, not one image file"
        )
    if suffix in (".mkv", ".mp4", ".avi", ".mov", ".m4v"):
        return Uri("video", text, {}, text)
    raise UriError(
        f"unknown output {text!r}: use .mkv (FFV1, lossless), .mp4, .avi, a folder/, a %06d.png pattern, "
        "null:// or gst:"
    )
