"""``svbr validate``: accuracy of ONNX models (FP32, FP16, INT8) against PyTorch FP32 and the ground truth.

    svbr validate --model svbrnet.onnx,svbrnet_fp16.onnx,svbrnet_int8.onnx \\
        --images datasets/sharp-train --json parity.json

On synthetic validation samples (:mod:`calibration.dataset`: whole
``size``×``size`` images from the validation-split images that calibration
never saw, all 13 map families, half of them with estimated maps), every model
runs full frame through a Polygraphy runner (:mod:`calibration.comparison`:
ONNX Runtime's CPU provider by default, so the numbers are measured on any
machine; TensorRT's with ``--backend tensorrt``), Polygraphy's comparator sets
it against the PyTorch FP32 runner with this package's SSIM as the comparison
function, and it is scored:

* against the PyTorch FP32 network of the checkpoint the models were exported
  from: mean and minimum SSIM and PSNR (outputs in [0, 1], float, no rounding);
  PSNR is capped at ``PSNR_CAP_DB`` (identical outputs);
* against the sharp ground truth: mean PSNR and SSIM, and the PSNR lost
  relative to the PyTorch FP32 network's own.

Pass/fail thresholds are ``THRESHOLDS`` (the issue's: FP16 mean SSIM vs PyTorch
≥ 0.999; INT8 ≥ 0.98 and at most 0.5 dB PSNR lost against the ground truth).
Exit status: 0 all pass, 1 some model fails, 2 bad input (missing file,
TensorRT absent for ``--backend tensorrt``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from calibration.dataset import DEFAULT_CACHE_DIR, SetSettings, WindowSample, build_set, iterate_set
from calibration.graph import file_sha256
from runtime.arguments import add_alias, add_model, add_size
from runtime.backends import Backend, create_backend
from runtime.metrics import psnr, ssim

#: A runner: network inputs (1×3×H×W, 1×1×H×W float32) -> 1×3×H×W float32 output.
Runner = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: PSNR (dB) reported for identical outputs, and the cap on every per-sample PSNR.
PSNR_CAP_DB = 100.0

#: Default validation set: small enough for a couple of minutes on a 2-core CPU.
DEFAULT_SAMPLES = 16
DEFAULT_SIZE_PX = 256

#: ``--backend`` short names -> registry names.
BACKEND_ALIASES: dict[str, str] = {"onnxruntime": "onnxruntime-cpu"}


@dataclass(frozen=True)
class Threshold:
    """Pass criteria for one precision.

    Attributes:
        min_mean_ssim: smallest acceptable mean SSIM against the PyTorch FP32 output.
        max_psnr_loss_db: largest acceptable drop of mean PSNR against the ground
            truth, relative to PyTorch FP32's (``None``: not checked).
    """

    min_mean_ssim: float
    max_psnr_loss_db: float | None = None


#: The issue's thresholds; FP32 (an exported model) must match PyTorch to export-parity level.
THRESHOLDS: dict[str, Threshold] = {
    "fp32": Threshold(min_mean_ssim=0.9999),
    "fp16": Threshold(min_mean_ssim=0.999),
    "int8": Threshold(min_mean_ssim=0.98, max_psnr_loss_db=0.5),
}


def _as_image(network_output: np.ndarray) -> np.ndarray:
    """1×3×H×W float -> H×W×3 float64 (what runtime.metrics expects)."""
    return np.asarray(network_output[0], dtype=np.float64).transpose(1, 2, 0)


def _capped_psnr(reference: np.ndarray, test: np.ndarray) -> float:
    return min(psnr(reference, test), PSNR_CAP_DB)


def score_against_truth(samples: Sequence[WindowSample], outputs: Sequence[np.ndarray]) -> dict:
    """Mean PSNR (dB) and SSIM of network outputs against the sharp images."""
    psnrs = [_capped_psnr(s.sharp.astype(np.float64) / 255, _as_image(o)) for s, o in zip(samples, outputs)]
    ssims = [ssim(s.sharp.astype(np.float64) / 255, _as_image(o)) for s, o in zip(samples, outputs)]
    return {
        "psnr_mean_db": float(np.mean(psnrs)),
        "ssim_mean": float(np.mean(ssims)),
        "psnr_per_sample_db": [round(v, 3) for v in psnrs],
    }


def score_model(
    samples: Sequence[WindowSample], compared: Sequence, outputs: Sequence[np.ndarray], reference_truth: dict
) -> dict:
    """Metrics of one model's outputs against PyTorch's (``compared``: the per-sample
    :class:`calibration.comparison.SsimResult` of Polygraphy's comparator) and against the ground truth."""
    ssims = [result.ssim for result in compared]
    psnrs = [result.psnr_db for result in compared]
    max_abs = max(result.max_abs for result in compared)
    truth = score_against_truth(samples, outputs)
    return {
        "vs_pytorch": {
            "ssim_mean": float(np.mean(ssims)),
            "ssim_min": float(np.min(ssims)),
            "psnr_mean_db": float(np.mean(psnrs)),
            "psnr_min_db": float(np.min(psnrs)),
            "max_abs": max_abs,
        },
        "vs_ground_truth": {
            "psnr_mean_db": truth["psnr_mean_db"],
            "ssim_mean": truth["ssim_mean"],
            "psnr_loss_db": reference_truth["psnr_mean_db"] - truth["psnr_mean_db"],
        },
        "per_sample": [
            {
                "source": s.source,
                "family": s.family,
                "map_kind": s.map_kind,
                "ssim_vs_pytorch": round(a, 6),
                "psnr_vs_pytorch_db": round(b, 2),
                "psnr_vs_truth_db": c,
            }
            for s, a, b, c in zip(samples, ssims, psnrs, truth["psnr_per_sample_db"])
        ],
    }


def judge(precision: str, metrics: dict) -> list[str]:
    """The thresholds ``metrics`` (from :func:`score_model`) misses; empty when it passes."""
    if precision not in THRESHOLDS:
        return [f"unknown precision {precision!r}: no thresholds"]
    threshold = THRESHOLDS[precision]
    failures = []
    ssim_mean = metrics["vs_pytorch"]["ssim_mean"]
    if not ssim_mean >= threshold.min_mean_ssim:
        failures.append(f"mean SSIM vs PyTorch {ssim_mean:.5f} < {threshold.min_mean_ssim}")
    loss = metrics["vs_ground_truth"]["psnr_loss_db"]
    if threshold.max_psnr_loss_db is not None and not loss <= threshold.max_psnr_loss_db:
        failures.append(f"PSNR vs ground truth {loss:.2f} dB below PyTorch FP32 (> {threshold.max_psnr_loss_db} dB)")
    return failures


def float_io_runner(backend: Backend) -> Runner:
    """``backend.run`` with the float network contract, also for a uint8-I/O model (``svbr export --io uint8``).

    A uint8-I/O model gets the window as uint8 (``rint(x × 255)``) in its channel
    order and the radius in px; its uint8 output comes back as float RGB N×3×H×W.
    Its score therefore includes the uint8 rounding of input and output, as deployed.
    """
    if getattr(backend, "io", "float32") != "uint8":
        return backend.run
    from runtime.constants import MAX_RADIUS_PX

    flip = backend.io_channel_order == "bgr"

    def run(image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        pixels = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        pixels = np.ascontiguousarray(pixels[..., ::-1] if flip else pixels)
        radius = np.ascontiguousarray(blur_map[:, 0] * np.float32(MAX_RADIUS_PX), dtype=np.float32)
        sharp = backend.run(pixels, radius)
        sharp = sharp[..., ::-1] if flip else sharp
        return np.ascontiguousarray(sharp.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255)

    return run


def model_metadata(path: Path) -> dict[str, str]:
    """``svbr.*`` metadata of an ONNX model, or of an engine (its ``svbr build-engine`` sidecar)."""
    if path.suffix == ".onnx":
        import onnx

        model = onnx.load(str(path), load_external_data=False)
        return {entry.key: entry.value for entry in model.metadata_props}
    from runtime.tensorrt_build import read_engine_metadata

    return dict(read_engine_metadata(path).get("svbr", {}))


def provenance_problem(path: Path, checkpoint_sha256: str | None) -> str | None:
    """Why the model at ``path`` cannot be compared with the reference checkpoint, or None."""
    metadata = model_metadata(path)
    exported_from = metadata.get("svbr.source_checkpoint_sha256")
    if checkpoint_sha256 is None or exported_from is None:
        return None  # e.g. a random-init export: nothing to compare
    if exported_from != checkpoint_sha256:
        return (
            f"{path} was exported from another checkpoint "
            f"({metadata.get('svbr.source_checkpoint', '?')}, sha256 {exported_from[:12]}…)"
        )
    return None


def model_runner(
    path: Path, backend: str, sample_size: tuple[int, int], cache_dir: Path | None = None, threads: int | None = None
):
    """A Polygraphy runner for ``model`` with the float network contract, and what it runs.

    ``onnxruntime`` / ``onnxruntime-cpu`` / ``onnxruntime-cuda``: Polygraphy's ONNX Runtime runner;
    ``tensorrt``: Polygraphy's TensorRT runner on the engine (an ONNX model is first built, or fetched
    from the engine cache, with a profile of exactly the sample size); any other registry backend:
    :class:`calibration.comparison.CallableRunner` around it. A uint8-I/O model is wrapped in
    :class:`calibration.comparison.Uint8IORunner`.

    Returns:
        (runner, {"precision", "backend", "uint8_io"}).
    """
    from calibration.comparison import CallableRunner, Uint8IORunner, onnxruntime_runner, tensorrt_runner
    from runtime.backends.base import onnx_io, onnx_precision
    from runtime.constants import PRECISIONS

    name = BACKEND_ALIASES.get(backend, backend)
    if name == "tensorrt":
        from runtime.tensorrt_build import build_engine, exact_profile, require_tensorrt

        require_tensorrt()  # the one-sentence TensorRTUnavailable, before anything else is tried
        if path.suffix == ".onnx":
            io = onnx_io(model_metadata(path))[0]
            path = build_engine(
                path,
                path.with_suffix(".validate.engine"),
                profile=exact_profile(*sample_size, io=io),
                cache_dir=cache_dir,
            ).engine_path
        metadata = model_metadata(path)
        precision = metadata.get("svbr.precision", "unknown")
        runner = tensorrt_runner(path)
        label = "tensorrt"
    elif name in ("onnxruntime-cpu", "onnxruntime-cuda") and path.suffix == ".onnx":
        metadata = model_metadata(path)
        precision = onnx_precision(path, metadata)
        provider = name.split("-")[1]
        runner = onnxruntime_runner(path, provider, threads if provider == "cpu" else None)
        label = name
    else:
        options = {"threads": threads} if threads is not None and name == "onnxruntime-cpu" else {}
        with create_backend(name, path, **options) as probe:  # loads once to learn the precision and I/O
            precision, metadata = probe.precision, dict(probe.metadata)
        runner = CallableRunner(make=lambda: create_backend(name, path, **options), name=str(path))
        label = name
    io, channel_order = onnx_io(metadata)
    if io == "uint8" and not isinstance(runner, CallableRunner):  # CallableRunner adapts through the backend
        runner = Uint8IORunner(runner, channel_order)
    return runner, {
        "precision": precision if precision in PRECISIONS else "unknown",
        "backend": label,
        "uint8_io": io == "uint8",
    }


def validate(
    models: Sequence[Path],
    reference: Runner,
    samples: Sequence[WindowSample],
    *,
    backend: str = "onnxruntime",
    checkpoint_sha256: str | None = None,
    cache_dir: Path | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> dict:
    """Score every model against ``reference`` (PyTorch FP32) and the ground truth, through Polygraphy.

    Every model and the reference run as Polygraphy runners (``Comparator.run``, one after the
    other); ``Comparator.compare_accuracy`` compares each model with the reference using
    :class:`calibration.comparison.SsimCompareFunc`, whose per-sample SSIM, PSNR and largest
    difference make the ``vs_pytorch`` scores.

    Args:
        models: ONNX model paths (or TensorRT engines with ``backend="tensorrt"``).
        reference: the PyTorch FP32 runner.
        samples: validation samples (with ``sharp``).
        backend: ``"onnxruntime"``, ``"tensorrt"`` or any registry name.
        checkpoint_sha256: SHA-256 of the reference checkpoint; models exported
            from another checkpoint are refused (``ValueError``).
        cache_dir: TensorRT engine cache (``None``: the default).
        progress: print one line per model to stderr.
        threads: ONNX Runtime CPU intra-op threads (``None``: every core).

    Returns:
        The report (see ``main``'s ``--json``); ``report["passed"]`` is the verdict.
    """
    from polygraphy.comparator import Comparator, IterationResult, RunResults
    from polygraphy.exception import PolygraphyException

    from calibration.comparison import CallableRunner, SsimCompareFunc, quiet_polygraphy
    from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, OUTPUT_NAME

    if not samples or any(s.sharp is None for s in samples):
        raise ValueError("validation needs samples with ground truth (a validation set)")
    models = [Path(path) for path in models]
    for path in models:  # all cheap checks before any inference
        if not path.is_file():
            raise FileNotFoundError(f"model not found: {path}")
        problem = provenance_problem(path, checkpoint_sha256)
        if problem:
            raise ValueError(problem + "; pass the matching --reference")
    feeds = []
    for sample in samples:
        image, blur_map = sample.network_inputs()
        feeds.append({INPUT_IMAGE_NAME: image, INPUT_MAP_NAME: blur_map})

    def run(runner) -> list:
        try:
            with quiet_polygraphy():
                return Comparator.run([runner], data_loader=feeds)[0][1]
        except PolygraphyException as error:
            raise RuntimeError(f"{runner.name}: {error}") from error

    start = time.perf_counter()
    reference_entry = ("pytorch-fp32", run(CallableRunner(reference, name="pytorch-fp32")))
    reference_outputs = [np.asarray(result[OUTPUT_NAME]) for result in reference_entry[1]]
    reference_truth = score_against_truth(samples, reference_outputs)
    blurry_truth = score_against_truth(samples, [s.network_inputs()[0] for s in samples])
    report: dict = {
        "thresholds": {name: asdict(t) for name, t in THRESHOLDS.items()},
        "samples": len(samples),
        "sample_size": list(samples[0].blurry.shape[:2]),
        "backend": backend,
        "reference": {
            "name": "pytorch-fp32",
            "psnr_mean_db": reference_truth["psnr_mean_db"],
            "ssim_mean": reference_truth["ssim_mean"],
            "seconds": round(time.perf_counter() - start, 1),
        },
        "blurry_input": {"psnr_mean_db": blurry_truth["psnr_mean_db"], "ssim_mean": blurry_truth["ssim_mean"]},
        "models": [],
    }
    rounded_reference: list | None = None
    for path in models:
        start = time.perf_counter()
        runner, info = model_runner(path, backend, samples[0].blurry.shape[:2], cache_dir, threads)
        precision = info["precision"]
        compared_with, reference_name = reference_entry, "pytorch-fp32"
        if info["uint8_io"]:
            # A uint8-I/O model delivers uint8: it is compared with PyTorch's output as Deblurrer delivers it
            # (rounded to uint8), so the thresholds measure the network, not the 8-bit output format.
            if rounded_reference is None:
                rounded_reference = [
                    IterationResult(
                        {OUTPUT_NAME: np.rint(np.clip(r, 0.0, 1.0) * 255).astype(np.float32) / 255},
                        runtime=0.0,
                        runner_name="pytorch-fp32-uint8",
                    )
                    for r in reference_outputs
                ]
            compared_with, reference_name = ("pytorch-fp32-uint8", rounded_reference), "pytorch-fp32 rounded to uint8"
        model_entry = (str(path), run(runner))
        pair = RunResults()
        pair.append(compared_with)
        pair.append(model_entry)
        threshold = THRESHOLDS.get(precision)
        with quiet_polygraphy():
            accuracy = Comparator.compare_accuracy(
                pair, compare_func=SsimCompareFunc(threshold.min_mean_ssim if threshold else None)
            )
        (pair_results,) = accuracy[0].values()
        compared = [iteration[OUTPUT_NAME] for iteration in pair_results]
        outputs = [np.asarray(result[OUTPUT_NAME]) for result in model_entry[1]]
        metrics = score_model(samples, compared, outputs, reference_truth)
        metrics["reference"] = reference_name
        metrics["polygraphy"] = {
            "comparator": "Comparator.run + Comparator.compare_accuracy(SsimCompareFunc)",
            "runner": type(runner).__name__,
            "samples_at_threshold": sum(bool(result) for result in compared),
        }
        failures = judge(precision, metrics)
        report["models"].append(
            {
                "model": str(path),
                "precision": precision,
                "backend": info["backend"],
                "passed": not failures,
                "failures": failures,
                "seconds": round(time.perf_counter() - start, 1),
                **metrics,
            }
        )
        if progress:
            print(f"validated {path.name} ({precision}): {'pass' if not failures else 'FAIL'}", file=sys.stderr)
    report["passed"] = all(entry["passed"] for entry in report["models"])
    return report


def format_table(report: dict) -> str:
    """The report as a fixed-width text table."""
    header = (
        f"{'model':<28} {'prec':<5} {'SSIM vs PyTorch':>17} {'PSNR vs PyTorch':>16} "
        f"{'PSNR/SSIM vs truth':>19} {'ΔPSNR':>7}  result"
    )
    lines = [header, "-" * len(header)]
    ref, blurry = report["reference"], report["blurry_input"]
    lines.append(
        f"{'blurry input':<28} {'':<5} {'':>17} {'':>16} "
        f"{blurry['psnr_mean_db']:>10.2f} / {blurry['ssim_mean']:.4f} {'':>7}"
    )
    lines.append(
        f"{'PyTorch (reference)':<28} {'fp32':<5} {'':>17} {'':>16} "
        f"{ref['psnr_mean_db']:>10.2f} / {ref['ssim_mean']:.4f} {'':>7}"
    )
    for entry in report["models"]:
        vs_ref, vs_truth = entry["vs_pytorch"], entry["vs_ground_truth"]
        lines.append(
            f"{Path(entry['model']).name[:28]:<28} {entry['precision']:<5} "
            f"{vs_ref['ssim_mean']:>8.5f}/{vs_ref['ssim_min']:.5f} "
            f"{vs_ref['psnr_mean_db']:>7.1f}/{vs_ref['psnr_min_db']:>5.1f} dB "
            f"{vs_truth['psnr_mean_db']:>7.2f} / {vs_truth['ssim_mean']:.4f} "
            f"{-vs_truth['psnr_loss_db']:>+7.2f}  {'pass' if entry['passed'] else 'FAIL: ' + '; '.join(entry['failures'])}"
        )
    lines.append(
        f"{report['samples']} samples of {report['sample_size'][0]}×{report['sample_size'][1]} px, "
        f"backend {report['backend']}; SSIM/PSNR vs PyTorch: mean/min; ΔPSNR: vs PyTorch FP32 against truth"
    )
    return "\n".join(lines)


def torch_reference(checkpoint: Path) -> Runner:
    """The PyTorch FP32 network of ``checkpoint`` as a runner (torch is imported here, not at import)."""
    import torch

    from training.model import load_model

    model, _ = load_model(checkpoint)

    def run(image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()

    return run


def _parser() -> argparse.ArgumentParser:
    from training.model import PRETRAINED_PATH

    parser = argparse.ArgumentParser(
        prog="svbr validate",
        description="Score ONNX models (any precision) against the PyTorch FP32 network and the ground truth "
        "on synthetic validation samples; pass/fail per precision.",
    )
    add_model(
        parser,
        dest="models",
        aliases=("--models",),
        type=str,
        required=True,
        metavar="MODEL[,MODEL...]",
        help="ONNX models, comma-separated (engines with --backend tensorrt)",
    )
    parser.add_argument(
        "--backend",
        default="onnxruntime",
        help="onnxruntime (CPU, default), tensorrt, or a registry name such as onnxruntime-cuda",
    )
    parser.add_argument("--json", type=Path, help="write the full report here")
    parser.add_argument(
        "--reference",
        dest="checkpoint",
        type=Path,
        default=PRETRAINED_PATH,
        metavar="PT",
        help=f"PyTorch checkpoint the models were exported from (default: the bundled {PRETRAINED_PATH.name})",
    )
    parser.add_argument(
        "--images",
        type=Path,
        default=os.environ.get("SVBR_SHARP_IMAGES"),
        help="folder of sharp images, the one `svbr synth` was given (default: $SVBR_SHARP_IMAGES)",
    )
    add_alias(parser, "--checkpoint", "checkpoint", "--reference", type=Path)
    parser.add_argument(
        "--samples", type=int, default=DEFAULT_SAMPLES, help=f"validation samples (default {DEFAULT_SAMPLES})"
    )
    add_size(
        parser,
        default=(DEFAULT_SIZE_PX, DEFAULT_SIZE_PX),
        help=f"square sample size WxH (or N), a multiple of 4 (default {DEFAULT_SIZE_PX}x{DEFAULT_SIZE_PX})",
    )
    parser.add_argument(
        "--split-seed",
        type=int,
        default=0,
        help="seed of the train/validation split: the `svbr synth --seed` of the training cache (default 0)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE_DIR, help=f"validation-set cache root (default {DEFAULT_CACHE_DIR})"
    )
    parser.add_argument(
        "--engine-cache", type=Path, default=None, help="TensorRT engine cache (default: the builder's)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="ONNX Runtime CPU intra-op threads (default: every core)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    models = [Path(entry) for entry in args.models.split(",") if entry]
    if not models:
        parser.error("--model needs at least one model")
    if args.size[0] != args.size[1]:
        parser.error(f"--size must be square here, got {args.size[0]}x{args.size[1]}")
    args.size = args.size[0]
    if args.images is None:
        parser.error("--images DIR is required (the sharp images; or set $SVBR_SHARP_IMAGES)")
    if args.samples < 1:
        parser.error("--samples must be >= 1")
    try:
        from runtime.tensorrt_build import TensorRTUnavailable
    except ImportError:  # pragma: no cover - the builder module ships with the runtime
        TensorRTUnavailable = RuntimeError  # type: ignore[assignment,misc]
    try:
        if args.backend == "tensorrt":
            from runtime.tensorrt_build import require_tensorrt

            require_tensorrt()  # before drawing samples or loading torch: fail fast, in one sentence
        missing = [str(m) for m in [*models, args.checkpoint] if not Path(m).is_file()]
        if missing:
            raise FileNotFoundError(f"not found: {', '.join(missing)}")
        settings = SetSettings("validation", str(Path(args.images).resolve()), args.split_seed, args.seed, args.size)
        samples = list(iterate_set(build_set(settings, args.samples, args.cache, progress=not args.quiet)))
        report = validate(
            models,
            torch_reference(args.checkpoint),
            samples,
            backend=args.backend,
            checkpoint_sha256=file_sha256(args.checkpoint),
            cache_dir=args.engine_cache,
            progress=not args.quiet,
            threads=args.threads,
        )
    except TensorRTUnavailable as error:
        print(f"svbr validate: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"svbr validate: error: {error}", file=sys.stderr)
        return 2
    report["settings"] = {
        "checkpoint": str(args.checkpoint),
        "images": str(args.images),
        "samples": args.samples,
        "size": args.size,
        "seed": args.seed,
        "split_seed": args.split_seed,
    }
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
