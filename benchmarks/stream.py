"""Camera-pipeline throughput: the threaded stream against a plain read → deblur → write loop, per backend.

    python -m benchmarks.stream                                   # every available backend, 160x120, 24 frames
    python -m benchmarks.stream --backends onnxruntime-cpu --size 320x240 --frames 24 --tile 0 --threads 1 \\
        --repeats 2 -o reports/stream

One run writes a lossless test video (frames from ``testsrc://``), then for each
backend, on the same ``Deblurrer`` (loaded and warmed up once):

* ``sequential``: ``cv2.VideoCapture.read`` → ``Deblurrer.deblur`` → ``cv2.VideoWriter.write``, one frame at a time;
* ``pipelined``: ``Deblurrer.stream(video, out.mkv, blur_map=...)``, the three-thread pipeline.

The modes alternate ``--repeats`` times, so both see the same machine load.
Both read the same file and write FFV1 ``.mkv``; the blur map is a constant
radius (``--radius``). Reported per mode: frames/s over the whole run, and the
per-frame latency p50/p99 (sequential: read start → written; pipelined:
captured → written, which includes the time a frame waits in the input queue,
up to 4 frames read ahead); for ``pipelined`` also the mean time of each stage. The pipeline can only gain what capture and writing
cost beside the network: on a CPU the network takes the cores either way.

Writes ``OUT/stream.json`` and ``OUT/stream.md`` (the table the README shows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import parse_resolution
from runtime.arguments import add_output
from runtime.backends import available_backends
from runtime.deblurrer import Deblurrer
from runtime.stream import TestSource


def write_test_video(path: Path, frames: int, size: tuple[int, int], fps: float = 30.0) -> None:
    source = TestSource(size, fps, frames=-1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, size)
    for i in range(frames):
        writer.write(source.make_frame(i))
    writer.release()


def run_sequential(deblurrer: Deblurrer, video: Path, out: Path, radius: float) -> dict[str, float]:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer = None
    latencies = []
    radius_map = None
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        if radius_map is None:
            radius_map = np.full(frame.shape[:2], radius, np.float32)
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), fps, frame.shape[1::-1])
        sharp = deblurrer.deblur(frame, radius_map)
        writer.write(sharp)
        latencies.append(time.perf_counter() - t0)
    if writer is not None:
        writer.release()
    wall = time.perf_counter() - start
    cap.release()
    ms = np.asarray(latencies) * 1000
    return {
        "frames": len(latencies),
        "wall_s": wall,
        "fps": len(latencies) / wall,
        "latency_p50_ms": float(np.percentile(ms, 50)),
        "latency_p99_ms": float(np.percentile(ms, 99)),
    }


def run_pipelined(deblurrer: Deblurrer, video: Path, out: Path, radius: float) -> dict[str, float]:
    start = time.perf_counter()
    stats = deblurrer.stream(video, out, blur_map=radius)
    wall = time.perf_counter() - start
    row = {
        "frames": stats.written,
        "wall_s": wall,
        "fps": stats.written / wall,
        "latency_p50_ms": stats.latency["p50_ms"],
        "latency_p99_ms": stats.latency["p99_ms"],
        "dropped": stats.dropped,
    }
    for stage in ("capture", "map", "deblur", "write"):
        row[f"{stage}_mean_ms"] = stats.stages[stage].get("mean_ms", 0.0)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", help="comma-separated backend names (default: every available one)")
    parser.add_argument("--size", type=parse_resolution, default=(160, 120), help="frame size WxH (default 160x120)")
    parser.add_argument("--frames", type=int, default=24, help="frames in the test video (default 24)")
    parser.add_argument("--tile", type=int, default=0, help="tile edge; 0 = full frame (default)")
    parser.add_argument("--radius", type=float, default=2.0, help="constant blur radius in px")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: ORT's choice)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode, alternating (default 2)")
    add_output(parser, dest="out", type=Path, default=Path("reports/stream"), help="output folder")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else available_backends()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "in.mkv"
        write_test_video(video, args.frames, args.size)
        for backend in backends:
            options = {"threads": args.threads} if args.threads and backend.startswith("onnxruntime") else {}
            with Deblurrer(args.model, backend=backend, tile=args.tile or None, **options) as deblurrer:
                warm = np.zeros((args.size[1], args.size[0], 3), np.uint8)
                deblurrer.deblur(warm, np.full(warm.shape[:2], args.radius, np.float32))
                for repeat in range(args.repeats):  # alternating, so both modes see the same machine load
                    for mode, run in (("sequential", run_sequential), ("pipelined", run_pipelined)):
                        row = run(deblurrer, video, Path(folder) / f"{backend}-{mode}.mkv", args.radius)
                        rows.append({"backend": deblurrer.backend.name, "mode": mode, "repeat": repeat, **row})
                        print(
                            f"{deblurrer.backend.name:18s} {mode:10s} #{repeat} {row['frames']:4d} frames "
                            f"{row['fps']:7.2f} fps  latency p50 {row['latency_p50_ms']:8.1f} ms "
                            f"p99 {row['latency_p99_ms']:8.1f} ms",
                            flush=True,
                        )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
        "settings": {
            "size": f"{args.size[0]}x{args.size[1]}",
            "frames": args.frames,
            "tile": args.tile,
            "radius": args.radius,
            "threads": args.threads,
        },
        "results": rows,
    }
    (args.out / "stream.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| backend | mode | run | frames | fps | latency p50 (ms) | latency p99 (ms) | stages: capture / map / deblur / "
        "write mean (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        stages = (
            " / ".join(f"{row[f'{s}_mean_ms']:.1f}" for s in ("capture", "map", "deblur", "write"))
            if row["mode"] == "pipelined"
            else "—"
        )
        lines.append(
            f"| {row['backend']} | {row['mode']} | {row['repeat'] + 1} | {row['frames']} | {row['fps']:.2f} | "
            f"{row['latency_p50_ms']:.0f} | {row['latency_p99_ms']:.0f} | {stages} |"
        )
    (args.out / "stream.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
