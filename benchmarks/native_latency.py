"""Latency of the native C++ runtime (``svbr-native``) against the Python ``Deblurrer`` on the same backend.

    python -m benchmarks.native_latency                                   # 320x240, 640x480; tile 512; 3 runs
    python -m benchmarks.native_latency --sizes 640x480,1280x720 --tile 256 --runs 5 --threads 2

Both sides run ONNX Runtime's CPU provider on the same model with the same intra-op thread count, on the same
random uint8 BGR image and float32 radius map, in one invocation of this script (same machine state):

* Python: ``Deblurrer(backend="onnxruntime-cpu").deblur(image, radius)`` in this process;
* C++: ``svbr-native IMAGE --blur-map MAP -o OUT --repeat N --timing``, which times ``svbr::Deblurrer::deblur``
  in the same way (after model load and file reading).

``deblur`` is the whole call (validation, normalisation, window gathering, the network, stitching, uint8
conversion); ``network`` is the time inside the backend's ``run``; ``overhead = deblur - network`` is what each
runtime adds around the network: that is where the C++ path can save time. p50 over ``--runs`` after one warm-up.
``process`` is one cold ``svbr-native`` / ``svbr deblur`` process each (start-up, imports, model load, PNG I/O).

Writes ``OUT/native_latency.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks._common import machine_info, parse_resolution
from runtime.arguments import add_output

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BINARY = ROOT / "build" / "native" / "svbr-native"


def _p50(values: list[float]) -> float:
    return float(np.median(values))


def time_python(
    image: np.ndarray, radius: np.ndarray, model: Path, tile: int | None, threads: int, runs: int
) -> dict[str, float]:
    from runtime.deblurrer import Deblurrer

    with Deblurrer(model, backend="onnxruntime-cpu", tile=tile, threads=threads) as deblurrer:
        network: list[float] = []
        inner = deblurrer.backend.run

        def timed_run(*args: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            try:
                return inner(*args)
            finally:
                network[-1] += (time.perf_counter() - start) * 1000

        deblurrer.backend.run = timed_run  # type: ignore[method-assign]
        totals: list[float] = []
        for _ in range(runs + 1):  # the first is a warm-up
            network.append(0.0)
            start = time.perf_counter()
            deblurrer.deblur(image, radius)
            totals.append((time.perf_counter() - start) * 1000)
        totals, network = totals[1:], network[1:]
    return {
        "deblur_ms": _p50(totals),
        "network_ms": _p50(network),
        "overhead_ms": _p50([t - n for t, n in zip(totals, network)]),
    }


def time_native(
    binary: Path, image_path: Path, map_path: Path, out: Path, model: Path, tile: int | None, threads: int, runs: int
) -> dict[str, float]:
    command = [
        str(binary),
        str(image_path),
        "--blur-map",
        str(map_path),
        "-o",
        str(out),
        "--model",
        str(model),
        "--backend",
        "onnxruntime-cpu",
        "--tile",
        str(tile or 0),
        "--threads",
        str(threads),
        "--repeat",
        str(runs + 1),
        "--timing",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    totals, network = timing["deblur_ms"][1:], timing["network_ms"][1:]
    return {
        "deblur_ms": _p50(totals),
        "network_ms": _p50(network),
        "overhead_ms": _p50([t - n for t, n in zip(totals, network)]),
    }


def time_processes(
    binary: Path, image_path: Path, map_path: Path, folder: Path, model: Path, tile: int | None, threads: int
) -> dict[str, float]:
    args = [str(image_path), "--blur-map", str(map_path), "--model", str(model), "--tile", str(tile or 0)]
    start = time.perf_counter()
    subprocess.run(
        [str(binary), *args, "-o", str(folder / "native.png"), "--threads", str(threads), "-q"],
        check=True,
        capture_output=True,
    )
    native = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "svbr_cli",
            "deblur",
            *args,
            "-o",
            str(folder / "python.png"),
            "--backend",
            "onnxruntime-cpu",
            "-q",
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    python = (time.perf_counter() - start) * 1000
    same = bool(np.array_equal(cv2.imread(str(folder / "native.png")), cv2.imread(str(folder / "python.png"))))
    return {"native_process_ms": native, "python_process_ms": python, "outputs_equal": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=Path(os.environ.get("SVBR_NATIVE_BIN", DEFAULT_BINARY)))
    parser.add_argument("--model", type=Path, default=ROOT / "runtime" / "models" / "svbrnet.onnx")
    parser.add_argument("--sizes", default="320x240,640x480", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in px; 0 = full frame (default 512)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per size after one warm-up (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime intra-op threads")
    parser.add_argument("--no-process", action="store_true", help="skip the cold-process comparison")
    add_output(
        parser,
        dest="out",
        type=Path,
        default=ROOT / "reports" / "benchmarks",
        help="output folder (default reports/benchmarks)",
    )
    args = parser.parse_args(argv)
    if not args.binary.is_file():
        print(f"native_latency: {args.binary} not found: build it first (README, section C++)", file=sys.stderr)
        return 2
    tile = args.tile or None
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for size in args.sizes.split(","):
            width, height = parse_resolution(size)
            image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            radius = (rng.random((height, width)) * 6).astype(np.float32)
            image_path, map_path = folder / f"{size}.png", folder / f"{size}.npy"
            cv2.imwrite(str(image_path), image)
            np.save(map_path, radius)
            python = time_python(image, radius, args.model, tile, args.threads, args.runs)
            native = time_native(
                args.binary, image_path, map_path, folder / "out.png", args.model, tile, args.threads, args.runs
            )
            row = {
                "size": f"{width}x{height}",
                "tile": args.tile,
                "python": python,
                "native": native,
                "speedup": python["deblur_ms"] / native["deblur_ms"],
            }
            if not args.no_process:
                row["process"] = time_processes(
                    args.binary, image_path, map_path, folder, args.model, tile, args.threads
                )
            rows.append(row)
    report = {
        "machine": machine_info(),
        "threads": args.threads,
        "runs": args.runs,
        "backend": "onnxruntime-cpu",
        "model": str(args.model),
        "results": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "native_latency.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"ONNX Runtime CPU, {args.threads} threads, tile {args.tile or 'full frame'}, p50 of {args.runs} runs (ms)\n")
    print(
        "| size | Python deblur | C++ deblur | Python network | C++ network | Python overhead | C++ overhead "
        "| speed-up | cold process Python / C++ |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        p, n = r["python"], r["native"]
        proc = r.get("process")
        cold = f"{proc['python_process_ms']:.0f} / {proc['native_process_ms']:.0f}" if proc else "-"
        print(
            f"| {r['size']} | {p['deblur_ms']:.1f} | {n['deblur_ms']:.1f} | {p['network_ms']:.1f} | "
            f"{n['network_ms']:.1f} | {p['overhead_ms']:.1f} | {n['overhead_ms']:.1f} | {r['speedup']:.2f}x "
            f"| {cold} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
