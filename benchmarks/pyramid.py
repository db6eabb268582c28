"""Time and peak memory of the blur-adaptive pyramid (issue 19) against today's single-scale path, in one run.

    python -m benchmarks.pyramid                                   # 1, 12 and 24 MP (~25 min on 1 CPU thread)
    python -m benchmarks.pyramid --sizes 320x240,640x480 --threads 2

For each size, fresh processes deblur the same random uint8 photo with maps that need every level
(1, ½, ¼, ⅛): ``Deblurrer(max_radius_px=6)`` (one full-resolution pass, radii clipped to 6 px: the
cost of the old behaviour) and ``Deblurrer()`` (``max_radius_px`` 48: the pyramid) on a horizontal
ramp 0 → 40 px (a photo whose blur grows across it: level-0 tiles without any radius ≤ 6.5 px skip
the network), and the pyramid's worst case, a sawtooth 0 → 40 px repeating every 256 px (every
level-0 tile runs, plus every coarser level). Peak RSS is the process's ``VmHWM`` (it starts afresh at exec),
so it covers imports, model, inputs and inference. Content does not change time or memory. Writes
``pyramid.json`` and ``pyramid.md`` to ``-o/--output`` (default ``reports/large_blur``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import cpu_model, parse_list, parse_resolution, peak_rss_mb
from runtime.arguments import add_output

DEFAULT_SIZES = "1152x864,4000x3000,6000x4000"  # 1.0, 12 and 24 MP
DEFAULT_OUT = Path("reports/large_blur")
RAMP_MAX_PX = 40.0
#: label -> (max_radius_px, map)
PATHS = {
    "single-scale (max_radius_px 6), ramp": (6.0, "ramp"),
    "pyramid, ramp": (48.0, "ramp"),
    "pyramid, sawtooth (worst case)": (48.0, "sawtooth"),
}
SAWTOOTH_PERIOD_PX = 256


def make_map(kind: str, height: int, width: int) -> np.ndarray:
    """The benchmark's radius map (px): ``ramp`` 0 → 40 px left to right, or ``sawtooth`` repeating it every 256 px."""
    columns = np.arange(width, dtype=np.float32)
    if kind == "ramp":
        profile = columns * np.float32(RAMP_MAX_PX / max(width - 1, 1))
    else:
        profile = (columns % SAWTOOTH_PERIOD_PX) * np.float32(RAMP_MAX_PX / (SAWTOOTH_PERIOD_PX - 1))
    return np.broadcast_to(profile, (height, width))


def measure(
    width: int, height: int, max_radius_px: float, kind: str, model: str | None, tile: int, threads: int
) -> dict[str, Any]:
    """Worker: one deblur in this (fresh) process; returns seconds, tiles per level and peak RSS (MB)."""
    from runtime import pyramid
    from runtime.deblurrer import Deblurrer

    deblurrer = Deblurrer(model, backend="onnxruntime-cpu", tile=tile, max_radius_px=max_radius_px, threads=threads)
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    radius = make_map(kind, height, width)
    before = peak_rss_mb()
    levels = pyramid.level_plan(radius, max_radius_px)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the single-scale path warns about clipping
        sharp = deblurrer.deblur(image, radius)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "levels": list(levels),
        "tiles": deblurrer.count_tiles(height, width, radius),
        "tiles_level0": deblurrer.count_tiles(height, width),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_before_deblur_mb": before,
        "image_map_output_mb": (image.nbytes + height * width * 4 + sharp.nbytes) / 1e6,
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Pyramid (max_radius_px 48) against the single-scale path",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['cpu']}, ONNX Runtime CPU, {report['threads']} thread(s), tile {report['tile']}; maps: a "
        f"horizontal ramp 0 → {RAMP_MAX_PX:g} px, and a sawtooth 0 → {RAMP_MAX_PX:g} px every "
        f"{SAWTOOTH_PERIOD_PX} px (the worst case: every level-0 tile runs). Peak RSS: the whole process "
        "(imports, model, inputs).",
        "",
        "| size | path | levels | tiles | time (s) | time vs single | peak RSS (MB) | peak − before deblur (MB) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        single = next(r for r in report["rows"] if r["size"] == row["size"] and r["max_radius_px"] == 6.0)
        # (the single-scale pass costs the same whatever the map: one network pass per tile)
        lines.append(
            f"| {row['size']} ({row['megapixels']:.1f} MP) | {row['path']} | "
            f"{', '.join('1/' + str(2**k) if k else '1' for k in row['levels'])} | {row['tiles']} | "
            f"{row['seconds']:.1f} | {row['seconds'] / single['seconds']:.2f}× | {row['peak_rss_mb']:.0f} | "
            f"{row['peak_rss_mb'] - row['peak_rss_before_deblur_mb']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyramid", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated WxH (default {DEFAULT_SIZES})")
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in px (default 512)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default 1)")
    add_output(parser, dest="out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--worker", nargs=4, metavar=("W", "H", "MAX_RADIUS", "MAP"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    model = None if args.model is None else str(args.model)
    if args.worker:
        width, height, limit = int(args.worker[0]), int(args.worker[1]), float(args.worker[2])
        print(json.dumps(measure(width, height, limit, args.worker[3], model, args.tile, args.threads)))
        return 0
    sizes = [parse_resolution(text) for text in parse_list(args.sizes)]
    rows = []
    for width, height in sizes:
        for path, (limit, kind) in PATHS.items():
            command = [
                sys.executable,
                "-m",
                "benchmarks.pyramid",
                "--worker",
                str(width),
                str(height),
                str(limit),
                kind,
                "--tile",
                str(args.tile),
                "--threads",
                str(args.threads),
            ]
            if model is not None:
                command += ["--model", model]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            row = {
                "size": f"{width}x{height}",
                "megapixels": width * height / 1e6,
                "path": path,
                "max_radius_px": limit,
                "map": kind,
                **json.loads(done.stdout.strip().splitlines()[-1]),
            }
            rows.append(row)
            print(
                f"  {row['size']} {path}: {row['seconds']:.1f} s, {row['tiles']} tiles, "
                f"peak RSS {row['peak_rss_mb']:.0f} MB",
                flush=True,
            )
    report = {
        "command": "python -m benchmarks.pyramid " + " ".join(argv if argv is not None else sys.argv[1:]),
        "cpu": cpu_model(),
        "threads": args.threads,
        "tile": args.tile,
        "model": model or "bundled",
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pyramid.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "pyramid.md").write_text(to_markdown(report))
    print(f"wrote {args.out / 'pyramid.json'} and {args.out / 'pyramid.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
