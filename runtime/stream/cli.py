"""``svbr stream``: deblur a video, an image sequence, a camera or a network stream, frame by frame.

    svbr stream clip.mp4 -o sharp.mkv --blur-map lens_map.npy
    svbr stream /dev/video0 -o live.mkv --blur-map 2.5 --input-width 640 --stats stats.json
    svbr stream "testsrc://?size=320x240&fps=30&live=1" -o null:// --blur-map 2 --frames 100

Exit codes: 0 finished; 2 bad options (unknown names, bad values, a missing
input file, an unusable blur map, model or output); 1 a camera, network or
GStreamer source could not be opened, or the source, sink, blur map or
backend failed while streaming (the output written so far is finalised); 130 stopped by Ctrl+C /
SIGTERM (the output is finalised; a second Ctrl+C aborts at once).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from runtime.arguments import add_deblur_options, deblur_option_error
from runtime.backends import backend_names
from runtime.stream.errors import MapError, SinkError, SourceError, StreamError
from runtime.stream.pipeline import DROP_POLICIES, FLIPS, StreamRunner, StreamStats
from runtime.stream.sinks import CODECS
from runtime.stream.uri import UriError, parse_source

PROG = "svbr stream"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Deblur a stream of frames (video file, image folder/glob/pattern, /dev/videoN, rtsp/http/udp, "
        "gst:PIPELINE, csi://N, testsrc://) into a video file, image pattern, null:// or gst:PIPELINE. "
        "Exit codes: 0 ok, 2 bad options, 1 source/sink/map failure, 130 interrupted (output finalised).",
    )
    parser.add_argument("input", help="source name (a bare number is refused: write csi://N or /dev/videoN)")
    parser.add_argument(
        "-o",
        "--output",
        default="null://",
        help="out.mkv (FFV1, lossless; default codec by suffix: .mp4 mp4v, .avi MJPG), out/, "
        "out/%%06d.png, null:// (default) or gst:PIPELINE",
    )
    parser.add_argument(
        "--blur-map",
        metavar="MAP",
        help="radius in px, .npy (H×W, or N×H×W per frame), PNG (with --map-scale), folder of maps, "
        "16-bit map video (.mkv, with --map-scale), or estimate[:K] (default: estimate every frame)",
    )
    parser.add_argument("--map-scale", type=float, metavar="PX_PER_UNIT", help="radius in px of one PNG/map-video unit")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    parser.add_argument("--backend", default="auto", choices=backend_names(), help="inference backend (default: auto)")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in px; 0 = one full-frame pass (default 512)")
    parser.add_argument("--batch-size", type=int, help="tiles per backend call (default: the backend's preference)")
    add_deblur_options(parser)
    parser.add_argument(
        "--input-width", type=int, help="resize frames to this width (aspect kept without --input-height)"
    )
    parser.add_argument("--input-height", type=int, help="resize frames to this height")
    parser.add_argument("--input-rate", type=float, metavar="FPS", help="keep at most this many frames per second")
    parser.add_argument("--input-flip", choices=tuple(FLIPS), default="none", help="flip or rotate input frames")
    parser.add_argument("--loop", type=int, default=0, help="replay a file/folder N more times (-1 = forever)")
    parser.add_argument("--realtime", action="store_true", help="play a file at its frame rate as if it were live")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N captured frames")
    parser.add_argument(
        "--drop",
        choices=DROP_POLICIES,
        default="auto",
        help="input queue: never (wait; files), oldest (keep the newest; live), auto (by source)",
    )
    parser.add_argument("--queue", type=int, help="input queue capacity (default 4 for never, 1 for oldest)")
    parser.add_argument("--open-timeout", type=float, default=10.0, metavar="S", help="seconds to open the source")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds without a frame before the source counts as stalled",
    )
    parser.add_argument("--output-codec", choices=("auto", *CODECS), default="auto", help="video codec")
    parser.add_argument("--output-fps", type=float, help="frame rate written into video files (default: the source's)")
    parser.add_argument("--stats", type=Path, metavar="FILE.json", help="write the stream statistics as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    return parser


class _Progress:
    """A throttled progress line on stderr."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.last = quiet, 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, stats: StreamStats) -> None:
        now = time.monotonic()
        if self.quiet or now - self.last < (0.5 if self.tty else 5.0):
            return
        self.last = now
        print(
            ("\r" if self.tty else "") + f"{PROG}: {stats.line()}",
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )


def _write_stats(path: Path | None, stats: StreamStats | None) -> None:
    if path is not None and stats is not None:
        path.write_text(json.dumps(stats.to_dict(), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    def fail(message: str, code: int = 2) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return code

    checks = [
        (args.tile < 0, f"--tile must be >= 0, got {args.tile}"),
        (args.map_scale is not None and not args.map_scale > 0, "--map-scale must be > 0"),
        (args.frames is not None and args.frames < 1, "--frames must be >= 1"),
        (args.queue is not None and args.queue < 1, "--queue must be >= 1"),
        (not args.open_timeout > 0 or not args.read_timeout > 0, "timeouts must be > 0"),
        (args.input_rate is not None and not args.input_rate > 0, "--input-rate must be > 0"),
        (args.output_fps is not None and not args.output_fps > 0, "--output-fps must be > 0"),
        (any(v is not None and v < 1 for v in (args.input_width, args.input_height)), "input size must be >= 1"),
    ]
    for bad, message in checks:
        if bad:
            return fail(message)
    from runtime.deblurrer import Deblurrer

    problem = deblur_option_error(args)
    if problem:
        return fail(problem)
    try:
        deblurrer = Deblurrer(
            args.model,
            backend=args.backend,
            tile=args.tile or None,
            batch_size=args.batch_size,
            strength=args.strength,
            max_radius_px=args.max_radius,
        )
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        return fail(str(error))
    progress = _Progress(args.quiet)
    size = (args.input_width, args.input_height) if (args.input_width or args.input_height) else None
    with deblurrer:
        try:
            runner = StreamRunner(
                deblurrer,
                args.input,
                args.output,
                blur_map=args.blur_map,
                drop=args.drop,
                queue=args.queue,
                open_timeout_s=args.open_timeout,
                read_timeout_s=args.read_timeout,
                size=size,
                flip=None if args.input_flip == "none" else args.input_flip,
                rate=args.input_rate,
                loop=args.loop,
                realtime=args.realtime,
                max_frames=args.frames,
                map_scale=args.map_scale,
                output_fps=args.output_fps,
                codec=args.output_codec,
                on_progress=progress,
            )
        except (MapError, SinkError, ValueError) as error:
            return fail(str(error))
        except SourceError as error:  # a file the user named: a bad option; a device/stream that fails: 1
            try:
                kind = parse_source(args.input).kind
            except UriError:
                kind = "bad"
            return fail(str(error), 2 if kind in ("bad", "video", "images") else 1)
        interrupted = {"count": 0}

        def on_signal(signum: int, _frame: Any) -> None:
            interrupted["count"] += 1
            if interrupted["count"] == 1:
                print(f"\n{PROG}: stopping (finishing the output; Ctrl+C again to abort)", file=sys.stderr)
                runner.stop()
            else:
                raise KeyboardInterrupt

        # installed explicitly: a process started in the background may inherit SIGINT as ignored
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        stats: StreamStats | None = None
        code = 0
        try:
            stats = runner.run()
        except StreamError as error:
            stats = getattr(error, "stats", runner.stats)
            code = fail(str(error), 1)
        except KeyboardInterrupt:
            stats = runner.stats
            code = 130
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if interrupted["count"] and code == 0:
            code = 130
        _write_stats(args.stats, stats)
        if not args.quiet and stats is not None:
            if progress.tty:
                print(file=sys.stderr)
            for warning in stats.warnings:
                print(f"{PROG}: warning: {warning}", file=sys.stderr)
            print(
                f"{PROG}: {stats.line()} ({stats.captured} captured, {stats.processed} processed, "
                f"{deblurrer.backend.name}) -> {stats.sink}",
                file=sys.stderr,
            )
        return code


if __name__ == "__main__":
    sys.exit(main())
