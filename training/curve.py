"""`svbr curve`: the learning curve of a run, as a picture and as a markdown table.

Reads ``RUN/log.jsonl`` (one line per validation, written by `svbr train`) and
writes ``OUT/learning_curve.png`` (validation PSNR and SSIM against steps, true
and estimated maps, and the blurry input's level where the log records it) and
``OUT/learning_curve.md``. In a run with a moving average of the weights
(``ema_decay``) the main columns score the average, and the trained weights
themselves get their own column and line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RUNS_DIR = Path(__file__).resolve().parent / "runs"


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The validation records of a run, in step order (a resumed run's repeated steps: the last one wins)."""
    log = Path(run_dir) / "log.jsonl"
    if not log.is_file():
        raise FileNotFoundError(f"no training log at {log}: run `svbr train` first")
    by_step = {}
    for line in log.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[record["step"]] = record
    if not by_step:
        raise ValueError(f"{log} holds no validation yet")
    return [by_step[step] for step in sorted(by_step)]


def to_markdown(records: list[dict[str, Any]], every: int = 1) -> str:
    """A table of the records (every ``every``-th one, and always the last)."""
    has_estimated = any("val_estimated_psnr" in r for r in records)
    has_trained = any("val_trained_true_psnr" in r for r in records)
    header = "| step | stage | learning rate | PSNR / SSIM, true map |"
    rule = "| ---: | --- | ---: | --- |"
    if has_estimated:
        header += " PSNR / SSIM, estimated map |"
        rule += " --- |"
    if has_trained:
        header += " trained weights (not averaged), true map |"
        rule += " --- |"
    lines = [header, rule]
    chosen = [r for i, r in enumerate(records) if i % every == every - 1 or i == len(records) - 1]
    for r in chosen:
        row = f"| {r['step']:,} | {r['stage']} | {r['lr']:.1e} | {r['val_true_psnr']:.2f} / {r['val_true_ssim']:.3f} |"
        if has_estimated:
            row += (f" {r['val_estimated_psnr']:.2f} / {r['val_estimated_ssim']:.3f} |"
                    if "val_estimated_psnr" in r else " |")
        if has_trained:
            row += (f" {r['val_trained_true_psnr']:.2f} / {r['val_trained_true_ssim']:.3f} |"
                    if "val_trained_true_psnr" in r else " (the same) |")
        lines.append(row)
    return "\n".join(lines) + "\n"


def plot(records: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Draw the curve into ``out`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise RuntimeError("svbr curve needs matplotlib: pip install -e '.[dev]'") from error
    steps = [r["step"] for r in records]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for axis, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        for kind, style in (("true", "-o"), ("estimated", "--s"), ("trained_true", ":^")):
            key = f"val_{kind}_{metric}"
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                name = "true map, trained weights (not averaged)" if kind == "trained_true" else f"{kind} map"
                axis.plot(*zip(*points), style, markersize=3, label=name)
        blurry = [r[f"val_blurry_{metric}"] for r in records if f"val_blurry_{metric}" in r]
        if blurry:
            axis.axhline(blurry[-1], color="grey", linestyle=":", label="blurry input")
        axis.set_xlabel("step")
        axis.set_ylabel(label)
        axis.set_xlim(0, max(steps) * 1.05)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svbr curve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=RUNS_DIR / "cpu",
                        help="run directory holding log.jsonl (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("reports/model"), help="output folder (default: %(default)s)")
    parser.add_argument("--every", type=int, default=1, help="table: every N-th validation (default 1)")
    args = parser.parse_args(argv)
    try:
        records = read_log(args.run)
        picture = plot(records, args.out / "learning_curve.png",
                       f"SVBR-Net validation during training ({args.run.name} run)")
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"svbr curve: error: {error}", file=sys.stderr)
        return 2
    table = to_markdown(records, args.every)
    (args.out / "learning_curve.md").write_text(table)
    print(table)
    print(f"wrote {picture}", file=sys.stderr)
    return 0
