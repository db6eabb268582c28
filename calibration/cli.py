"""``svbr calibrate``: bake a precision into the ONNX graph (FP16, or INT8 with calibrated QDQ pairs).

TensorRT 11 builds strongly typed networks only and TensorRT 10 builds the same
graphs (SPEC §6), so the precision lives in the ONNX model this writes; the
engine builder and every other runtime then simply follow the graph's types.

    svbr calibrate --precision fp16 --model svbrnet.onnx -o svbrnet_fp16.onnx
    svbr calibrate --precision int8 --model svbrnet.onnx -o svbrnet_int8.onnx \\
        --images datasets/sharp-train                  # 16 windows of a 256-px tile
    svbr calibrate --precision int8 --target cpu ...   # integer kernels on ONNX Runtime's CPU provider
    svbr calibrate --precision int8 --model svbrnet.onnx --images ... --sensitivity --json sensitivity.json
    svbr calibrate --precision int8 ... --keep-fp16 auto --target-ssim 0.99   # mixed INT8/FP16

``--sensitivity`` measures, for every convolution, the SSIM lost when it alone is
quantized, and ``--keep-fp16`` keeps the most sensitive ones (or named ones) out
of INT8 in float16 (:mod:`calibration.mixed`). The ranking is stored, keyed by the
weights' SHA-256, and reused by later runs on the same weights, so the default
(``--keep-fp16 auto``) sweeps the layers once per set of weights, not on every
call (:mod:`calibration.ranking`; the bundled model's ranking ships beside it).
Each stage prints one line on stderr (``-q`` silences them).

A uint8-I/O model (``svbr export --io uint8``) stays uint8-I/O: its float core
is converted and wrapped again (``--io`` changes the I/O kind).

The output keeps the source model's ``svbr.*`` metadata (I/O contract, source
checkpoint) with ``svbr.precision`` updated and ``svbr.precision_*`` entries
saying how it was made.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import onnx

from calibration.dataset import DEFAULT_CACHE_DIR, DEFAULT_TILE_PX, SetSettings, build_set
from calibration.fp16 import convert_to_fp16
from calibration.graph import QDQSummary, check_precision_graph, file_sha256, metadata_of, set_metadata
from calibration.int8 import (
    CALIBRATION_METHODS,
    DEFAULT_METHOD,
    DEFAULT_PERCENTILE,
    TARGETS,
    Int8Settings,
    quantize_int8,
)
from calibration.mixed import (
    DEFAULT_EVAL_SAMPLES,
    DEFAULT_TARGET_SSIM,
    FP16_LAYERS_KEY,
    SsimEvaluator,
    choose_fp16_layers,
    fold_weight_qdq,
    format_sensitivity,
    layer_flops,
    parse_keep_fp16,
    restrict_quantization,
    tensorrt_cost_estimate,
    weighted_layers,
)
from calibration.mixed import (
    sensitivity as layer_sensitivity,
)
from calibration.ranking import cache_path as ranking_cache_path
from calibration.ranking import candidate_paths, load_ranking, path_beside, save_ranking, weights_sha256
from export.io_wrap import IO_KINDS, io_kind, strip_uint8_io, wrap_uint8_io
from runtime.arguments import add_model, add_output
from runtime.constants import HALO_PX

#: Precisions ``svbr calibrate`` makes (fp32 is ``svbr export``'s).
TARGET_PRECISIONS: tuple[str, ...] = ("fp16", "int8")

#: Default number of calibration windows: every map family (13) at least once, each map kind four times.
#: 16 windows of a 256-px tile score the parity of 32 windows of 512 px (README of the step-1,500 release:
#: 16, 32 and 64 windows within 0.0006 SSIM) in a fraction of the time and memory; every shipped INT8 model
#: was made with them.
DEFAULT_SAMPLES = 16

#: Default calibration tile of ``svbr calibrate`` (windows of tile + 2·halo = 424 px); see DEFAULT_SAMPLES.
DEFAULT_CALIBRATION_TILE_PX = 256


class Stages:
    """One line per stage on stderr (``svbr calibrate [  12 s] ...``), readable in a pipe or a log file."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"svbr calibrate [{time.perf_counter() - self.start:5.0f} s] {message}", file=sys.stderr, flush=True)


def load_fp32_model(path: Path) -> onnx.ModelProto:
    """Load and check an ``svbr export`` model; refuse one that already has a precision baked in."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    model = onnx.load(str(path))
    precision = metadata_of(model).get("svbr.precision", "fp32")
    if precision != "fp32":
        raise ValueError(f"{path} is already {precision}; calibrate the FP32 model of `svbr export`")
    check_precision_graph(model, "fp32")
    return model


def save_model(model: onnx.ModelProto, out_path: Path) -> Path:
    """Write atomically (a failed run never leaves a torn model), creating parent folders."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out_path)
    return out_path


def calibrate(
    onnx_path: Path,
    out_path: Path,
    precision: str,
    *,
    calibration: SetSettings | None = None,
    samples: int = DEFAULT_SAMPLES,
    int8: Int8Settings = Int8Settings(),
    keep_fp32: tuple[str, ...] = (),
    cache_dir: Path = DEFAULT_CACHE_DIR,
    progress: bool = True,
    io: str | None = None,
    sensitivity: bool = False,
    keep_fp16: str | int | Sequence[str] | None = None,
    target_ssim: float = DEFAULT_TARGET_SSIM,
    eval_samples: int = DEFAULT_EVAL_SAMPLES,
    threads: int | None = None,
) -> dict:
    """Make the ``precision`` graph of an FP32 model, check it, save it; return a summary dict.

    Args:
        onnx_path: the FP32 model (``svbr export``).
        out_path: where to write the new model; ``None`` only with ``sensitivity`` (analysis only).
        precision: ``"fp16"`` or ``"int8"``.
        calibration: INT8 only: the calibration set (kind ``"calibration"``).
        samples: INT8 only: calibration windows.
        int8: INT8 only: calibration method.
        keep_fp32: FP16 only: op types or node names kept in float32.
        cache_dir: calibration-set cache root.
        progress: progress bars on stderr.
        io: graph I/O of the result, ``"float32"`` or ``"uint8"``; ``None`` = the source's
            (a uint8-I/O source is unwrapped, its float core converted, and wrapped again
            in the same channel order).
        sensitivity: INT8 only: measure every layer quantized alone (``summary["sensitivity"]``) and store
            the ranking, even when one of these weights is stored. Without it, ``keep_fp16="auto"`` or a
            count reuses a stored ranking of the same weights (``summary["ranking"]``, :mod:`calibration.ranking`)
            and measures (and stores) one only when there is none.
        keep_fp16: INT8 only: layers kept out of INT8 in float16: ``"auto"`` (the fewest most
            sensitive ones reaching ``target_ssim``), a count of the most sensitive, or node names.
        target_ssim: for ``keep_fp16="auto"``: mean SSIM against the FP32 model to reach.
        eval_samples: calibration windows the sensitivity and the mixed graph are measured on.
        threads: ONNX Runtime intra-op threads of those measurements (``None``: its default).
    """
    if precision not in TARGET_PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {TARGET_PRECISIONS}")
    if keep_fp16 is not None and not isinstance(keep_fp16, (str, int)):
        keep_fp16 = list(keep_fp16)
    if (sensitivity or keep_fp16 is not None) and (precision != "int8" or int8.target != "tensorrt"):
        raise ValueError("--sensitivity and --keep-fp16 apply to INT8 for TensorRT (--target tensorrt)")
    if out_path is None and not sensitivity:
        raise ValueError("an output path is needed (only --sensitivity runs without one)")
    if eval_samples < 1:
        raise ValueError(f"eval_samples must be >= 1, got {eval_samples}")
    start = time.perf_counter()
    stage = Stages(progress)
    source = load_fp32_model(onnx_path)
    stage(f"loaded {onnx_path}; making {precision.upper()}")
    source_io = io_kind(source)
    io = io or source_io
    if io not in IO_KINDS:
        raise ValueError(f"io must be one of {IO_KINDS}, got {io!r}")
    channel_order = metadata_of(source).get("svbr.channel_order", "BGR").lower() if source_io == "uint8" else "bgr"
    if source_io == "uint8":
        source = strip_uint8_io(source)
    metadata = {
        **metadata_of(source),
        "svbr.precision": precision,
        "svbr.precision_source": Path(onnx_path).name,
        "svbr.precision_source_sha256": file_sha256(Path(onnx_path)),
    }
    summary: dict = {"precision": precision, "source": str(onnx_path), "out": str(out_path)}
    if precision == "fp16":
        result = convert_to_fp16(source, keep_fp32)
        metadata["svbr.precision_recipe"] = json.dumps(
            {"converter": "onnxconverter_common.float16", "keep_io_types": True, "keep_fp32": list(keep_fp32)}
        )
    else:
        if calibration is None:
            raise ValueError("INT8 needs a calibration set (images to draw it from)")
        if calibration.kind != "calibration":
            raise ValueError("INT8 must be calibrated on a calibration set, not a validation set")
        analyse = sensitivity or keep_fp16 is not None
        count = max(samples, eval_samples if analyse else 0)
        stage(
            f"calibration set: {count} windows of {calibration.size + 2 * calibration.halo} px "
            f"(cached under {cache_dir})"
        )
        paths = build_set(calibration, count, cache_dir, progress=progress)
        stage(f"quantizing ({int8.method}, target {int8.target}) on {samples} windows")
        result = quantize_int8(source, paths[:samples], int8)
        recipe = {
            "quantizer": "onnxruntime.quantization.quantize_static (QDQ)",
            **asdict(int8),
            "samples": samples,
            "calibration_set": {**asdict(calibration), "images_dir": Path(calibration.images_dir).name},
        }
        summary["calibration_set"] = str(paths[0].parent)
        if analyse:
            result, mixed = _mixed_precision(
                source,
                result,
                paths[:eval_samples],
                calibration,
                summary,
                sensitivity,
                keep_fp16,
                target_ssim,
                threads,
                progress,
                model_path=Path(onnx_path),
                cache_dir=Path(cache_dir),
                stage=stage,
                int8=int8,
            )
            if mixed is not None:
                recipe["keep_fp16"] = mixed
                if mixed["layers"]:
                    metadata[FP16_LAYERS_KEY] = json.dumps(mixed["layers"])
        metadata["svbr.precision_recipe"] = json.dumps(recipe)
    if out_path is None:
        summary["seconds"] = round(time.perf_counter() - start, 1)
        stage(f"done in {summary['seconds']} s (analysis only, no model written)")
        return summary
    stage(f"checking the {precision.upper()} graph and writing {out_path}")
    set_metadata(result, metadata)
    if io == "uint8":
        result = wrap_uint8_io(result, channel_order)
    summary["io"] = io
    checked = check_precision_graph(result, precision)
    if isinstance(checked, QDQSummary):
        summary.update(asdict(checked))
    else:
        summary["cast_nodes"] = checked
    save_model(result, out_path)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    summary["megabytes"] = round(Path(out_path).stat().st_size / 1e6, 2)
    stage(f"done in {summary['seconds']} s")
    return summary


def cli_keep_fp16(args: argparse.Namespace) -> str | int | list[str] | None:
    """``--keep-fp16`` as :func:`calibrate` takes it; unset, TensorRT INT8 keeps ``auto``.

    Measured on the step-5,500 weights: every layer in INT8 scored mean SSIM 0.970 against
    PyTorch (the bar is 0.98), the first convolution alone in float16 0.991 (README, Precision).
    """
    if args.keep_fp16 is None:
        return "auto" if args.precision == "int8" and args.target == "tensorrt" else None
    return None if args.keep_fp16 == "none" else parse_keep_fp16(args.keep_fp16)


def _mixed_precision(
    source: onnx.ModelProto,
    int8_model: onnx.ModelProto,
    eval_paths: list[Path],
    calibration: SetSettings,
    summary: dict,
    sensitivity: bool,
    keep_fp16: str | int | list[str] | None,
    target_ssim: float,
    threads: int | None,
    progress: bool,
    *,
    model_path: Path | None = None,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    stage: Stages | None = None,
    int8: Int8Settings = Int8Settings(),
) -> tuple[onnx.ModelProto, dict | None]:
    """Sensitivity analysis and/or the mixed INT8/FP16 graph; fills ``summary``, returns (model, recipe entry).

    The ranking that ``keep_fp16="auto"`` or a count needs is read from a stored one for these weights
    (:mod:`calibration.ranking`) unless ``sensitivity`` asks to measure it; a measured ranking is stored.
    """
    stage = stage or Stages(False)
    window = calibration.size + 2 * calibration.halo
    flops = layer_flops(source, window, window)
    stage(f"scoring graphs on {len(eval_paths)} calibration windows against the FP32 model")
    evaluator = SsimEvaluator(source, eval_paths, threads)
    measured = {
        "reference": "FP32 ONNX model (= PyTorch FP32 to SSIM 1.00000)",
        "samples": len(eval_paths),
        "window": window,
        "set": "calibration windows",
    }
    ranking: list[str] | None = None
    if sensitivity or keep_fp16 == "auto" or isinstance(keep_fp16, int):
        sha256 = weights_sha256(source)
        layers = weighted_layers(int8_model)
        stored = None if sensitivity else load_ranking(candidate_paths(model_path, cache_dir, sha256), sha256, layers)
        if stored is not None:
            ranking = stored.layers
            stage(
                f"reusing the stored sensitivity ranking {stored.path} (weights sha256 {sha256[:12]}…; "
                "--sensitivity measures it again)"
            )
            summary["ranking"] = {
                "layers": ranking,
                "reused": True,
                "source": str(stored.path),
                "weights_sha256": sha256,
            }
        else:
            stage(
                f"measuring the sensitivity of {len(layers)} layers, each quantized alone "
                f"(runs once for these weights: sha256 {sha256[:12]}…)"
            )
            rows = layer_sensitivity(int8_model, evaluator, flops, progress=progress)
            ranking = [row.layer for row in rows]
            measured["none_quantized"] = evaluator.mean_ssim(restrict_quantization(int8_model, quantized=[]))
            measured["all_quantized"] = evaluator.mean_ssim(fold_weight_qdq(int8_model))
            summary["sensitivity"] = {**measured, "layers": [asdict(row) for row in rows]}
            summary["sensitivity_table"] = format_sensitivity(rows, measured)
            targets = ([path_beside(model_path)] if model_path is not None else []) + [
                ranking_cache_path(cache_dir, sha256)
            ]
            settings = {**asdict(calibration), "images_dir": Path(calibration.images_dir).name, **asdict(int8)}
            written = save_ranking(
                targets,
                sha256,
                ranking,
                model_name=model_path.name if model_path is not None else "?",
                rows=[asdict(row) for row in rows],
                measured=measured,
                settings=settings,
            )
            stage("stored the ranking: " + (", ".join(str(path) for path in written) or "nowhere (not writable)"))
            summary["ranking"] = {
                "layers": ranking,
                "reused": False,
                "stored": [str(p) for p in written],
                "weights_sha256": sha256,
            }
    if keep_fp16 is None:
        return int8_model, None
    history: list[dict] = []
    if keep_fp16 == "auto":
        stage(f"choosing the float16 layers: the fewest most sensitive reaching mean SSIM {target_ssim}")
        chosen, history = choose_fp16_layers(int8_model, ranking, evaluator, target_ssim, progress=progress)
    elif isinstance(keep_fp16, int):
        if not 0 <= keep_fp16 <= len(ranking):
            raise ValueError(f"--keep-fp16 {keep_fp16}: the graph has {len(ranking)} layers")
        chosen = ranking[:keep_fp16]
    else:
        unknown = sorted(set(keep_fp16) - set(weighted_layers(int8_model)))
        if unknown:
            raise ValueError(f"--keep-fp16: not Conv/ConvTranspose nodes of this graph: {unknown[:5]}")
        chosen = [name for name in weighted_layers(int8_model) if name in set(keep_fp16)]
    count = len(chosen)
    chosen = [name for name in weighted_layers(int8_model) if name in set(chosen)]  # graph order
    mixed = restrict_quantization(int8_model, fp16=chosen)
    score = next((h["ssim"] for h in history if h["fp16_layers"] == count), None)
    if score is None:
        score = evaluator.mean_ssim(fold_weight_qdq(mixed))
    estimate = tensorrt_cost_estimate(flops, chosen)
    recipe = {
        "request": "names" if isinstance(keep_fp16, list) else keep_fp16,
        "target_ssim": target_ssim,
        "layers": chosen,
        "ssim": score,
        "fp16_flop_share": estimate["fp16_flop_share"],
        **measured,
    }
    summary["mixed"] = {**recipe, "tensorrt_estimate": estimate}
    if history:
        summary["mixed_search"] = history
    return mixed, recipe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr calibrate",
        description="Bake FP16 or INT8 (calibrated QuantizeLinear/DequantizeLinear pairs) into an "
        "SVBR-Net ONNX model, with float32 inputs and output; TensorRT builds it as a strongly typed network.",
    )
    parser.add_argument("--precision", choices=TARGET_PRECISIONS, required=True)
    add_model(parser, dest="onnx", aliases=("--onnx",), required=True, help="FP32 model from `svbr export`")
    add_output(
        parser,
        dest="out",
        type=Path,
        default=None,
        help="the .onnx file to write (required, except for an analysis-only --sensitivity run)",
    )
    group = parser.add_argument_group("INT8 calibration set (validation-split images only)")
    group.add_argument(
        "--images",
        type=Path,
        default=os.environ.get("SVBR_SHARP_IMAGES"),
        help="folder of sharp images, the one `svbr synth` was given (default: $SVBR_SHARP_IMAGES)",
    )
    group.add_argument(
        "--samples", type=int, default=DEFAULT_SAMPLES, help=f"calibration windows (default {DEFAULT_SAMPLES})"
    )
    group.add_argument(
        "--method",
        choices=sorted(CALIBRATION_METHODS),
        default=DEFAULT_METHOD,
        help=f"activation-range method (default {DEFAULT_METHOD})",
    )
    group.add_argument(
        "--percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help=f"for --method percentile (default {DEFAULT_PERCENTILE})",
    )
    group.add_argument(
        "--target",
        choices=TARGETS,
        default="tensorrt",
        help="tensorrt (default: symmetric int8 QDQ on the convolutions, TensorRT's pattern) or cpu "
        "(uint8 activations, quantized outputs: ONNX Runtime's CPU provider runs integer QLinearConv)",
    )
    group.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_CALIBRATION_TILE_PX,
        help="calibration tile (px); windows are tile + 2*halo "
        f"(default {DEFAULT_CALIBRATION_TILE_PX}; {DEFAULT_TILE_PX} = the runtime's default tile)",
    )
    group.add_argument("--halo", type=int, default=HALO_PX, help=f"deployment halo (px, default {HALO_PX})")
    group.add_argument(
        "--max-image-side",
        type=int,
        default=None,
        help="downscale photos larger than this first (default: native resolution)",
    )
    group.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the train/validation split: the `svbr synth --seed` of the training cache (default 0)",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    group.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"calibration-set cache root (default {DEFAULT_CACHE_DIR})",
    )
    group = parser.add_argument_group("INT8 with margin: sensitivity and mixed INT8/FP16 (--target tensorrt)")
    group.add_argument(
        "--sensitivity",
        action="store_true",
        help="measure the SSIM lost when each convolution alone is quantized; print the table "
        "(most sensitive first) and store the ranking (beside the model, <stem>_int8_ranking.json, "
        "and in the cache) for later runs, which otherwise reuse a stored ranking of the same "
        "weights; without -o/--output no model is written",
    )
    group.add_argument(
        "--keep-fp16",
        default=None,
        metavar="auto|none|N|NAMES",
        help="keep layers out of INT8, computing in float16: auto (the fewest most sensitive "
        "reaching --target-ssim; the default for --target tensorrt), none (every layer INT8), "
        "N (the N most sensitive) or comma-separated node names",
    )
    group.add_argument(
        "--target-ssim",
        type=float,
        default=DEFAULT_TARGET_SSIM,
        help=f"for --keep-fp16 auto: mean SSIM vs the FP32 model to reach (default {DEFAULT_TARGET_SSIM})",
    )
    group.add_argument(
        "--eval-samples",
        type=int,
        default=DEFAULT_EVAL_SAMPLES,
        help="calibration windows the sensitivity and the mixed graph are scored on "
        f"(the first of the set; default {DEFAULT_EVAL_SAMPLES})",
    )
    group.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime intra-op threads for those scores (default: all cores)"
    )
    group.add_argument("--json", type=Path, default=None, help="write the full summary (per-layer report) here")
    group = parser.add_argument_group("FP16")
    group.add_argument(
        "--keep-fp32", default="", help="comma-separated op types or node names to keep in float32 (default: none)"
    )
    parser.add_argument(
        "--io",
        choices=IO_KINDS,
        default=None,
        help="graph I/O of the result (default: the source model's; see `svbr export --io`)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no stage lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    calibration = None
    if args.out is None and not args.sensitivity:
        parser.error("-o/--output is required (only --sensitivity runs without it)")
    try:
        if args.precision == "int8":
            if args.images is None:
                parser.error("--precision int8 needs --images DIR (the sharp images; or set $SVBR_SHARP_IMAGES)")
            if args.samples < 1:
                parser.error("--samples must be >= 1")
            calibration = SetSettings(
                "calibration",
                str(Path(args.images).resolve()),
                args.split_seed,
                args.seed,
                args.tile,
                args.halo,
                args.max_image_side,
            )
        summary = calibrate(
            args.onnx,
            args.out,
            args.precision,
            calibration=calibration,
            samples=args.samples,
            int8=Int8Settings(args.method, args.percentile, args.target),
            keep_fp32=tuple(entry for entry in args.keep_fp32.split(",") if entry),
            cache_dir=args.cache,
            progress=not args.quiet,
            io=args.io,
            sensitivity=args.sensitivity,
            keep_fp16=cli_keep_fp16(args),
            target_ssim=args.target_ssim,
            eval_samples=args.eval_samples,
            threads=args.threads,
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"svbr calibrate: error: {error}", file=sys.stderr)
        return 2
    table = summary.pop("sensitivity_table", None)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    if table:
        print(table)
    brief = {key: value for key, value in summary.items() if key != "sensitivity"}
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
