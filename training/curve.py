"""`svbr curve`: the learning curve of a run, as a picture and as a markdown table.

Reads ``RUN/log.jsonl`` (one line per validation, written by `svbr train`) and
writes ``OUT/learning_curve.png`` (validation PSNR and SSIM against steps for
every validation set the log holds — true, estimated and runtime-estimated
maps, noisy and compressed inputs, Pixel 4 photos — and the blurry input's
level where the log records it) and ``OUT/learning_curve.md``. In a run with a moving average of the weights
(``ema_decay``) the main columns score the average, and the trained weights
themselves get their own column and line.

A run that was fine-tuned from a step of another (``init_weights``) continues
that run's curve: ``--run training/runs/real --run training/runs/real2@14000``
keeps ``real`` up to step 14,000 and draws ``real2`` after it, its steps offset
by 14,000 (the stage column names the run each row comes from); a further
``--run training/runs/real3@6000`` continues ``real2`` from its own step 6,000
(step 20,000 of the chain).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runtime.arguments import add_output

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


def parse_run(text: str) -> tuple[Path, int | None]:
    """``DIR`` or ``DIR@STEP`` (a run that starts from step STEP of the run before it) → (dir, step)."""
    folder, at, step = text.rpartition("@")
    if not at:
        return Path(text), None
    if not step.isdigit():
        raise ValueError(f"--run {text!r}: after '@' comes the step this run started from, e.g. runs/real2@14000")
    return Path(folder), int(step)


def chain(runs: list[tuple[Path, int | None]]) -> list[dict[str, Any]]:
    """The records of runs that continue one another, on one step axis.

    Each run after the first names the step of the run before it (in that run's own numbering) that it
    started from: the earlier records after that point are dropped, and the later run's steps are placed
    after it (its step 0, the starting weights scored again, is dropped too). Offsets add up along the
    chain, so a third run continues the second on the same axis. Stages are prefixed with their run's name.
    """
    records: list[dict[str, Any]] = []
    offset = 0  # where the current run's step 0 lies on the common axis
    for index, (folder, start) in enumerate(runs):
        if index and start is None:
            raise ValueError(f"--run {folder}: a chained run needs DIR@STEP, the step of the run before it")
        if index == 0 and start is not None:
            raise ValueError(f"--run {folder}@{start}: the first run starts at step 0; '@STEP' is for later runs")
        offset += start or 0
        own = read_log(folder)
        if index:
            records = [r for r in records if r["step"] <= offset]
            own = [r for r in own if r["step"] > 0]
        prefix = f"{folder.name}: " if len(runs) > 1 else ""
        records += [{**r, "step": r["step"] + offset, "stage": prefix + str(r["stage"])} for r in own]
    return records


#: Validation sets a log may hold, in display order, with their labels.
VALIDATION_SETS: dict[str, str] = {
    "true": "true map",
    "estimated": "estimated map (augmented)",
    "runtime": "map estimated by the runtime",
    "noise2": "true map, noise σ 2",
    "noise5": "true map, noise σ 5",
    "jpeg80": "true map, JPEG 80",
    "pixel4": "Pixel 4 real photos, no map",
    "trained_true": "true map, trained weights (not averaged)",
}


def sets_in(records: list[dict[str, Any]]) -> list[str]:
    """The validation sets (``VALIDATION_SETS`` keys) that any record scores."""
    return [kind for kind in VALIDATION_SETS if any(f"val_{kind}_psnr" in r for r in records)]


def blurry_key(kind: str, metric: str) -> str:
    """The log key of the blurry input's own score on a set (the clean sets share ``val_blurry_*``)."""
    return (
        f"val_blurry_{metric}"
        if kind in ("true", "estimated", "runtime", "trained_true")
        else f"val_blurry_{kind}_{metric}"
    )


def to_markdown(records: list[dict[str, Any]], every: int = 1) -> str:
    """A table of the records (every ``every``-th one, and always the last): PSNR / SSIM per validation set.

    A last row gives the blurry input's own level on each set, where the log records it.
    """
    kinds = sets_in(records)
    lines = [
        "| step | stage | learning rate | " + " | ".join(f"PSNR / SSIM, {VALIDATION_SETS[k]}" for k in kinds) + " |",
        "| ---: | --- | ---: |" + " --- |" * len(kinds),
    ]
    chosen = [r for i, r in enumerate(records) if i % every == every - 1 or i == len(records) - 1]

    def cell(record: dict[str, Any], psnr_key: str, ssim_key: str) -> str:
        return f"{record[psnr_key]:.2f} / {record[ssim_key]:.3f}" if psnr_key in record else ""

    for r in chosen:
        # Before a weight average starts, the trained weights are the ones scored.
        cells = [
            cell(r, f"val_{k}_psnr", f"val_{k}_ssim") or ("(the same)" if k == "trained_true" else "") for k in kinds
        ]
        lines.append(f"| {r['step']:,} | {r['stage']} | {r['lr']:.1e} | " + " | ".join(cells) + " |")
    last = records[-1]
    blurry = [cell(last, blurry_key(k, "psnr"), blurry_key(k, "ssim")) for k in kinds]
    if any(blurry):
        lines.append("| blurry input | | | " + " | ".join(blurry) + " |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict[str, Any]], out: Path, title: str) -> Path:
    """Draw the curve into ``out`` (PNG): one line per validation set, the blurry level dotted in its colour."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise RuntimeError("svbr curve needs matplotlib: pip install -e '.[dev]'") from error
    steps = [r["step"] for r in records]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    for axis, metric, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        shown_blurry: set[str] = set()
        for kind in sets_in(records):
            key = f"val_{kind}_{metric}"
            points = [(r["step"], r[key]) for r in records if key in r]
            style = ":^" if kind == "trained_true" else "-o"
            (line,) = axis.plot(*zip(*points), style, markersize=3, label=VALIDATION_SETS[kind])
            level_key = blurry_key(kind, metric)
            levels = [r[level_key] for r in records if level_key in r]
            if levels and level_key not in shown_blurry:
                shown_blurry.add(level_key)
                axis.axhline(levels[-1], color=line.get_color(), linestyle=":", linewidth=1)
        axis.set_xlabel("step")
        axis.set_ylabel(label + " (dotted: blurry input)")
        axis.set_xlim(0, max(max(steps), 1) * 1.05)
        axis.grid(alpha=0.3)
    axes[1].legend(fontsize=7, loc="lower right")
    figure.suptitle(title)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svbr curve", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--run",
        action="append",
        metavar="DIR[@STEP]",
        help=f"run directory holding log.jsonl (default: {RUNS_DIR / 'cpu'}); repeat it for a run fine-tuned "
        "from step STEP of the run before it: --run runs/real --run runs/real2@14000",
    )
    add_output(
        parser, dest="out", type=Path, default=Path("reports/model"), help="output folder (default: %(default)s)"
    )
    parser.add_argument("--every", type=int, default=1, help="table: every N-th validation (default 1)")
    args = parser.parse_args(argv)
    try:
        runs = [parse_run(text) for text in args.run or [str(RUNS_DIR / "cpu")]]
        records = chain(runs)
        names = " then ".join(folder.name for folder, _ in runs)
        picture = plot(records, args.out / "learning_curve.png", f"SVBR-Net validation during training ({names} run)")
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"svbr curve: error: {error}", file=sys.stderr)
        return 2
    table = to_markdown(records, args.every)
    (args.out / "learning_curve.md").write_text(table)
    print(table)
    print(f"wrote {picture}", file=sys.stderr)
    return 0
