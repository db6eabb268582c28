"""Head-to-head latency of ONNX models on ONNX Runtime CPU, interleaved in one process.

    python -m benchmarks.compare_cpu --model fp32=svbrnet.onnx --model uint8io=svbrnet_u8.onnx \\
        --sizes 1280x720,1920x1080 --runs 5 --threads 1 -o reports/benchmarks/compare_cpu.json

``benchmarks.latency`` times each configuration in its own process, one after
the other; on a shared machine the load changes between them. Here every
model is loaded once and the timed calls alternate (A, B, A, B, ...), so a
ratio between two models is measured under the same load. What is timed is the
user-facing call, ``Deblurrer.deblur(uint8 BGR image, radius map)`` full frame
(``--tile 0``), uint8 out: for a float-I/O model the numpy normalisation is
included, for a uint8-I/O model it happens in the graph.

Also prints what ONNX Runtime's CPU provider actually runs for every model
(``benchmarks.latency.onnxruntime_cpu_graph``: operators after its graph
optimisations, e.g. ``QLinearConv`` = integer convolution, ``FusedConv`` /
``Conv`` = float).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.latency import onnxruntime_cpu_graph
from runtime.arguments import add_output


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare_cpu", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="LABEL=PATH",
        help="a model to time (repeat; the first is the baseline of the ratios)",
    )
    parser.add_argument("--sizes", default="1280x720", help="WxH,... (default 1280x720)")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per model and size (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per model and size first (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (default 1)")
    parser.add_argument("--tile", type=int, default=0, help="tile px (default 0 = full frame)")
    add_output(parser, dest="out", type=Path, help="write the report as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    from runtime.deblurrer import Deblurrer

    args = _parser().parse_args(argv)
    models = dict(item.split("=", 1) for item in args.model)
    labels = list(models)
    report: dict = {
        "threads": args.threads,
        "runs": args.runs,
        "tile": args.tile or None,
        "load_average_start": os.getloadavg(),
        "models": models,
        "kernels": {},
        "results": [],
    }
    for label, path in models.items():
        graph = onnxruntime_cpu_graph(Path(path), args.threads)
        report["kernels"][label] = graph
        print(f"{label}: ONNX Runtime CPU runs {graph['operators']}")
    deblurrers = {
        label: Deblurrer(path, backend="onnxruntime-cpu", tile=args.tile or None, threads=args.threads)
        for label, path in models.items()
    }
    rng = np.random.default_rng(0)
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.split("x"))
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        radius = rng.uniform(0.0, 6.0, (height, width)).astype(np.float32)
        times: dict[str, list[float]] = {label: [] for label in labels}
        for label in labels:
            for _ in range(args.warmup):
                deblurrers[label].deblur(image, radius)
        for _ in range(args.runs):
            for label in labels:  # interleaved: every model sees the same load
                start = time.perf_counter()
                deblurrers[label].deblur(image, radius)
                times[label].append((time.perf_counter() - start) * 1e3)
        # The numpy work a float-I/O model needs around the network (what a uint8-I/O graph takes over).
        from runtime.deblurrer import image_to_network, map_to_network, network_to_image

        numpy_ms = []
        fake_output = rng.random((1, 3, height, width), dtype=np.float32)
        for _ in range(5):
            start = time.perf_counter()
            image_to_network(image[None], "bgr"), map_to_network(radius[None])
            network_to_image(fake_output, np.dtype(np.uint8), "bgr")
            numpy_ms.append((time.perf_counter() - start) * 1e3)
        report["results"].append(
            {"model": "numpy normalisation alone", "size": size, "p50_ms": round(float(np.median(numpy_ms)), 1)}
        )
        print(f"{size} numpy normalisation + conversion back alone (float-I/O path): p50 {np.median(numpy_ms):.1f} ms")
        base = float(np.median(times[labels[0]]))
        for label in labels:
            p50 = float(np.median(times[label]))
            row = {
                "model": label,
                "size": size,
                "p50_ms": round(p50, 1),
                "min_ms": round(min(times[label]), 1),
                "ratio_vs_first": round(base / p50, 3),
                "saving_ms_vs_first": round(base - p50, 1),
                "times_ms": [round(t, 1) for t in times[label]],
            }
            report["results"].append(row)
            print(
                f"{size} {label:>12}: p50 {p50:8.1f} ms  min {row['min_ms']:8.1f} ms  "
                f"{row['ratio_vs_first']:.3f}× {labels[0]} ({row['saving_ms_vs_first']:+.1f} ms)"
            )
    report["load_average_end"] = os.getloadavg()
    print(f"load average {report['load_average_start'][0]:.2f} -> {report['load_average_end'][0]:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
