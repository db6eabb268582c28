"""Accuracy next to speed: PSNR/SSIM of every precision and of the classical baseline, joined with latency.

    python -m benchmarks.latency -o reports/benchmarks ...          # first: latency.json
    python -m benchmarks.quality --cache cache/sharp-train-360x340 --limit 20 -o reports/benchmarks

Accuracy: the validation split of a `svbr synth` cache (``--limit`` samples
spread over it), each scored with its true blur map and with its augmented
(estimated) map, against the sharp ground truth: mean PSNR (dB), SSIM and the
colour shift (8-bit levels), all with ``training.evaluate``'s code. Rows: the
blurry input, the classical layered Wiener baseline (regularisation tuned on
the training split as `svbr eval` does), SVBR-Net in PyTorch eager (FP32, the
checkpoint) and the FP32/FP16/INT8 ONNX models through ``runtime.Deblurrer``
(``--backend``, default onnxruntime-cpu; outputs rounded to 8 bits as users get them).

Speed: each row's p50 at ``--latency-size`` and ``--latency-tile`` from
``latency.json`` (same backend and precision), and its speed-up over PyTorch
eager there. The classical baseline is not in latency.json: it is timed here
on that size, with a map that uses every blur level (its worst case: one
whole-image deconvolution per level).

Writes ``OUT/quality.json`` and ``OUT/quality.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    TORCH_EAGER_CPU,
    TorchEagerBackend,
    add_model_arguments,
    default_checkpoint,
    default_threads,
    parse_list,
    parse_resolution,
    parse_tile,
    resolve_models,
    tile_label,
)
from benchmarks.latency import backend_options, model_kind, onnxruntime_cpu_graph, unavailable_reason
from runtime.arguments import add_output

DEFAULT_CACHE = Path("cache/sharp-train-360x340")
DEFAULT_OUT = Path("reports/benchmarks")


@dataclass(frozen=True)
class Row:
    """One method of the table and where its latency comes from."""

    method: str
    precision: str | None
    backend: str | None  # what ran it for accuracy, and the latency.json backend to look up
    model: str | None


# --- the methods -----------------------------------------------------------------------------


def network_method(deblurrer: Any) -> Any:
    """A ``training.evaluate.Method`` running a ``Deblurrer`` (cache samples are RGB)."""

    def run(blurry_rgb: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
        return deblurrer.deblur(blurry_rgb, radius_px, channel_order="rgb")

    return run


def build_methods(
    args: argparse.Namespace, regularisation: float
) -> tuple[dict[str, Any], list[Row], list[str], list[Any]]:
    """The methods to score, their table rows, notes on what was skipped, and Deblurrers to close."""
    from runtime.deblurrer import Deblurrer
    from training.baselines import layered_deconvolution

    methods: dict[str, Any] = {
        "blurry input": lambda blurry, radius: blurry,
        "classical (layered Wiener)": lambda blurry, radius: layered_deconvolution(blurry, radius, regularisation),
    }
    rows = [Row("blurry input", None, None, None), Row("classical (layered Wiener)", "fp64", "numpy", None)]
    notes: list[str] = []
    opened: list[Any] = []
    checkpoint = args.checkpoint if args.checkpoint is not None else default_checkpoint()
    if checkpoint is not None and checkpoint.is_file():
        eager = Deblurrer(backend=TorchEagerBackend(checkpoint, "cpu", "fp32", threads=args.threads), tile=args.tile)
        opened.append(eager)
        methods["SVBR-Net, PyTorch eager"] = network_method(eager)
        rows.append(Row("SVBR-Net, PyTorch eager", "fp32", TORCH_EAGER_CPU, str(checkpoint)))
    else:
        notes.append(f"PyTorch eager row skipped: checkpoint {checkpoint} not found (--weights)")

    precisions = parse_list(args.precisions)
    models = resolve_models(args.model_fp32, args.model_fp16, args.model_int8, checkpoint, args.out, precisions)
    notes += models.notes + list(models.missing.values())
    options = backend_options(args.backend, "fp32", args.threads)
    for precision in precisions:
        if precision not in models.paths:
            continue
        deblurrer = Deblurrer(models.paths[precision], backend=args.backend, tile=args.tile, **options)
        opened.append(deblurrer)
        if deblurrer.backend.precision != precision:
            notes.append(
                f"{models.paths[precision]} was given as {precision} but its graph is {deblurrer.backend.precision}"
            )
        if precision == "fp16" and args.backend == "onnxruntime-cpu":
            notes.extend(fp16_on_cpu_note(models.paths[precision], args.threads))
        name = f"SVBR-Net, {args.backend}"
        methods[f"{name} {precision}"] = network_method(deblurrer)
        rows.append(Row(name, precision, args.backend, str(models.paths[precision])))
    return methods, rows, notes, opened


def fp16_on_cpu_note(model: Path, threads: int) -> list[str]:
    """A note when ONNX Runtime's CPU provider runs an FP16 graph with FP32 weights (then only weights were rounded)."""
    graph = onnxruntime_cpu_graph(model, threads)
    if graph["weights"].get("float16"):
        return []
    return [
        "fp16 on onnxruntime-cpu: after its graph optimisations ONNX Runtime holds no float16 weights "
        f"({', '.join(f'{n} {kind}' for kind, n in graph['weights'].items())}): it computes in FP32 with "
        "FP16-rounded weights, so this row measures weight rounding only; FP16 activations are exercised on a "
        "GPU (`svbr validate`, or --backend onnxruntime-cuda / tensorrt)"
    ]


# --- latency: joined from latency.json, and the classical baseline timed here ----------------------


def classical_latency_ms(width: int, height: int, regularisation: float, runs: int) -> float | None:
    """p50 (ms) of the classical baseline on a random W×H image whose map uses every blur level."""
    from training.baselines import layered_deconvolution

    if runs < 1:
        return None
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    # A left-to-right ramp over 0..6 px: every one of the 23 levels appears, plus in-focus pixels.
    radius = np.tile(np.linspace(0.0, 6.0, width, dtype=np.float32), (height, 1))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        layered_deconvolution(image, radius, regularisation)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50))


def latency_lookup(latency: dict[str, Any] | None, size: str, tile: int | None) -> dict[tuple[str, str], float]:
    """``{(backend, precision): p50_ms}`` of the latency rows at ``size`` and ``tile``."""
    if latency is None:
        return {}
    return {
        (r["backend"], r["precision"]): r["p50_ms"]
        for r in latency["results"]
        if r["size"] == size and r["tile"] == tile
    }


def join_latency(
    scores: dict[str, dict[str, float]],
    rows: list[Row],
    methods: list[str],
    p50: dict[tuple[str, str], float],
    classical_ms: float | None,
    baseline_backend: str = TORCH_EAGER_CPU,
) -> list[dict[str, Any]]:
    """The table rows: scores plus p50 (ms) and speed-up over PyTorch eager (``baseline_backend``, FP32)."""
    baseline = p50.get((baseline_backend, "fp32"))
    table = []
    for key, row in zip(methods, rows):
        if row.backend == "numpy":
            latency_ms = classical_ms
        elif row.backend is None:
            latency_ms = None
        else:
            latency_ms = p50.get((row.backend, row.precision or ""))
        speedup = None if latency_ms is None or baseline is None else round(baseline / latency_ms, 3)
        table.append(
            {
                "method": row.method,
                "precision": row.precision,
                "backend": row.backend,
                "model": row.model,
                **{k: round(v, 4) for k, v in scores[key].items()},
                "p50_ms": None if latency_ms is None else round(latency_ms, 1),
                "speedup_vs_torch_eager": speedup,
            }
        )
    return table


# --- the report ------------------------------------------------------------------------------------


def to_markdown(report: dict[str, Any]) -> str:
    """quality.md: the accuracy/latency table and how it was made."""
    size, tile = report["latency_size"], tile_label(report["latency_tile"])
    lines = [
        "# SVBR-Net accuracy and latency",
        "",
        f"Accuracy: {report['samples']} validation samples of {report['cache']}, mean SSIM / PSNR (dB) against "
        "the sharp ground truth, 8-bit outputs; colour shift in 8-bit levels (true map). "
        f"Network rows run through `Deblurrer` on {report['backend']}, tile {tile_label(report['tile'])}.",
        f"Latency: p50 per {size} frame (tile {tile}) from {report['latency_source'] or 'no latency.json'}; "
        "the classical baseline timed here on the same size (map using all 23 levels). "
        f"Speed-up: {report['baseline']} p50 / row p50.",
        "",
        f"| method | precision | true map | augmented map | colour shift | p50 ms @ {size} | vs PyTorch eager |",
        "| --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        p50 = "—" if r["p50_ms"] is None else f"{r['p50_ms']:.0f}"
        speedup = "—" if r["speedup_vs_torch_eager"] is None else f"{r['speedup_vs_torch_eager']:.2f}×"
        lines.append(
            f"| {r['method']} | {r['precision'] or '—'} | {r['true_ssim']:.3f} / {r['true_psnr']:.2f} "
            f"| {r['augmented_ssim']:.3f} / {r['augmented_psnr']:.2f} | {r['true_colour_shift']:.2f} "
            f"| {p50} | {speedup} |"
        )
    lines += ["", f"Classical regularisation (chosen on the training split): {report['classical_regularisation']:g}."]
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.quality",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"`svbr synth` cache; its validation split is scored (default: {DEFAULT_CACHE})",
    )
    parser.add_argument(
        "--limit", type=int, default=20, help="validation samples, spread over the split; 0 = all (default: 20)"
    )
    parser.add_argument(
        "--precisions",
        default="fp32,fp16,int8",
        help="comma list of ONNX precisions to score (default: fp32,fp16,int8)",
    )
    parser.add_argument(
        "--backend",
        default="onnxruntime-cpu",
        help="runtime backend for the ONNX rows: onnxruntime-cpu (default), onnxruntime-cuda, tensorrt",
    )
    parser.add_argument(
        "--tile",
        type=parse_tile,
        default=None,
        metavar="PX",
        help="tile edge for the network rows; default full frame (tiled output is identical)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="CPU threads for torch and ONNX Runtime (default: all usable cores)",
    )
    add_model_arguments(parser)
    group = parser.add_argument_group("classical baseline")
    group.add_argument(
        "--regularisation",
        type=float,
        help="Wiener regularisation; default: tuned on the training split as `svbr eval` does",
    )
    group.add_argument("--tuning-samples", type=int, help="training samples for that tuning (default: svbr eval's, 16)")
    group.add_argument(
        "--classical-runs",
        type=int,
        default=1,
        help="timed runs of the classical baseline at --latency-size (default: 1; 0 = do not time it)",
    )
    group = parser.add_argument_group("latency join")
    group.add_argument("--latency", type=Path, help="latency.json from benchmarks.latency (default: OUT/latency.json)")
    group.add_argument(
        "--latency-size",
        type=parse_resolution,
        default=(1280, 720),
        metavar="WxH",
        help="the resolution whose latency the table shows (default: 1280x720)",
    )
    group.add_argument(
        "--latency-tile",
        type=parse_tile,
        default=None,
        metavar="PX",
        help="the tile setting whose latency the table shows (default 0 = full frame)",
    )
    add_output(parser, dest="out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from training.cache import list_samples
    from training.evaluate import TUNING_SAMPLES, score_methods, spread, tune_classical

    reason = unavailable_reason(args.backend)
    if reason is not None or model_kind(args.backend) != "onnx":
        print(
            f"quality: error: --backend {args.backend} cannot run the ONNX models here: "
            f"{reason or 'it does not load ONNX files'}",
            file=sys.stderr,
        )
        return 2
    try:
        files = spread(list_samples(args.cache, "val"), args.limit or None)
        if args.regularisation is None:
            count = args.tuning_samples or TUNING_SAMPLES
            print(f"quality: tuning the classical regularisation on {count} training samples", flush=True)
            regularisation, tuning = tune_classical(args.cache, count)
        else:
            regularisation, tuning = args.regularisation, {}
    except FileNotFoundError as error:
        print(f"quality: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    methods, rows, notes, opened = build_methods(args, regularisation)
    for note in notes:
        print(f"  note: {note}")
    print(f"quality: scoring {len(methods)} methods on {len(files)} validation samples × 2 maps", flush=True)
    scores = score_methods(files, methods, quiet=args.quiet, desc="quality")
    skipped = scores.pop("skipped_blur_free")["count"]
    if skipped:
        notes.append(f"{skipped} of {len(files)} samples without blur (blurry == sharp) skipped")
    for deblurrer in opened:
        deblurrer.close()

    width, height = args.latency_size
    size = f"{width}x{height}"
    latency_path = args.latency or args.out / "latency.json"
    latency = json.loads(latency_path.read_text()) if latency_path.is_file() else None
    if latency is None:
        notes.append(f"no latency numbers: {latency_path} not found (run `python -m benchmarks.latency` first)")
    elif not latency_lookup(latency, size, args.latency_tile):
        notes.append(f"{latency_path} has no rows at {size} tile {tile_label(args.latency_tile)}")
    if args.classical_runs:
        print(f"quality: timing the classical baseline at {size}", flush=True)
    classical_ms = classical_latency_ms(width, height, regularisation, args.classical_runs)
    # The speed-up baseline latency.py used: PyTorch eager on the CPU, or on CUDA in a GPU-only run.
    baseline = (latency or {}).get("baseline") or f"{TORCH_EAGER_CPU} fp32"

    report = {
        "cache": str(args.cache),
        "samples": len(files) - skipped,
        "backend": args.backend,
        "tile": args.tile,
        "threads": args.threads,
        "classical_regularisation": regularisation,
        "classical_tuning_psnr": {str(k): v for k, v in tuning.items()},
        "latency_source": None if latency is None else str(latency_path),
        "baseline": baseline,
        "latency_size": size,
        "latency_tile": args.latency_tile,
        "notes": notes,
        "rows": join_latency(
            scores,
            rows,
            list(methods),
            latency_lookup(latency, size, args.latency_tile),
            classical_ms,
            baseline.split()[0],
        ),
    }
    (args.out / "quality.json").write_text(json.dumps(report, indent=1))
    markdown = to_markdown(report)
    (args.out / "quality.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
