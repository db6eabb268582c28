"""Accuracy next to CPU latency for every precision graph: `svbr validate` joined with `benchmarks.compare_cpu`.

    python -m benchmarks.precision_table --validate reports/model/parity.json \\
        --latency reports/benchmarks/compare_cpu.json -o reports/benchmarks/precision_table.md

Both inputs are JSON reports of their commands; models are matched by path.
Accuracy is `svbr validate`'s (mean SSIM against PyTorch FP32, and PSNR/SSIM
against the sharp truth); latency is compare_cpu's p50 per frame, whose first
model is the baseline of the speed-ups.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from runtime.arguments import add_output, add_size


def _key(path: str) -> str:
    return str(Path(path).resolve())


def join(validate: dict, latency: dict, size: str) -> list[dict]:
    """One row per model timed at ``size``, with its validation scores where `svbr validate` scored it."""
    scored = {_key(m["model"]): m for m in validate["models"]}
    rows = []
    for result in latency["results"]:
        if result["size"] != size or result["model"] not in latency["models"]:
            continue
        path = latency["models"][result["model"]]
        model = scored.get(_key(path))
        rows.append(
            {
                "label": result["model"],
                "model": path,
                "precision": model["precision"] if model else None,
                "ssim_vs_pytorch": (model["vs_pytorch"]["ssim_mean"], model["vs_pytorch"]["ssim_min"])
                if model
                else None,
                "truth": (model["vs_ground_truth"]["psnr_mean_db"], model["vs_ground_truth"]["ssim_mean"])
                if model
                else None,
                "passed": model["passed"] if model else None,
                "p50_ms": result["p50_ms"],
                "speedup": result["ratio_vs_first"],
            }
        )
    return rows


def markdown(rows: list[dict], size: str, validate: dict) -> str:
    blurry = validate["blurry_input"]
    lines = [
        f"| model | precision | SSIM vs PyTorch (mean / min) | PSNR / SSIM vs truth | validate | "
        f"p50 ms @ {size} | vs first |",
        "| --- | --- | --- | --- | --- | ---: | ---: |",
        f"| blurry input | — | — | {blurry['psnr_mean_db']:.2f} / {blurry['ssim_mean']:.4f} | — | — | — |",
    ]
    for r in rows:
        ssim = "not validated" if r["ssim_vs_pytorch"] is None else "{:.5f} / {:.5f}".format(*r["ssim_vs_pytorch"])
        truth = "—" if r["truth"] is None else "{:.2f} / {:.4f}".format(*r["truth"])
        verdict = "—" if r["passed"] is None else ("pass" if r["passed"] else "FAIL")
        lines.append(
            f"| {r['label']} | {r['precision'] or '—'} | {ssim} | {truth} | {verdict} | "
            f"{r['p50_ms']:.0f} | {r['speedup']:.2f}× |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("--validate", type=Path, required=True, help="`svbr validate --json` report")
    parser.add_argument("--latency", type=Path, required=True, help="`benchmarks.compare_cpu -o` report")
    add_size(parser, help="WxH of the latency column (default: the report's first)")
    add_output(parser, dest="out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    validate, latency = (json.loads(path.read_text()) for path in (args.validate, args.latency))
    size = (
        f"{args.size[0]}x{args.size[1]}"
        if args.size
        else next(r["size"] for r in latency["results"] if r["model"] in latency["models"])
    )
    table = markdown(join(validate, latency, size), size, validate)
    print(table, end="")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
