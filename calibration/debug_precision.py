"""The TensorRT side of INT8 with margin: ``polygraphy debug precision`` with our SSIM as the check.

    python -m calibration.debug_precision prepare --model models/svbrnet_int8.onnx \\
        --images ../shared/datasets/sharp-train --tile 256 --workdir reports/trt_debug
    python -m calibration.debug_precision run --workdir reports/trt_debug          # on a GPU with TensorRT 10

``prepare`` (no TensorRT needed) writes into the work directory, all through Polygraphy:

* ``inputs.json``: the first ``--samples`` calibration windows (``Comparator.run(save_inputs_path=...)``);
* ``reference.json``: the FP32 ONNX model's outputs on them (``OnnxrtRunner``,
  ``save_outputs_path=...``; the FP32 model matches PyTorch at SSIM 1.00000);
* ``calibration_loader.py``: a ``--data-loader-script`` yielding the calibration windows
  (for TensorRT's own INT8 calibrator, FP32 models only);
* ``command.json``: the ``polygraphy debug precision`` argv (:func:`debug_precision_argv`).

``run`` executes that command (TensorRT needed). Each iteration Polygraphy
builds ``polygraphy_debug.engine`` with some layers marked to run in a higher
precision and runs the ``--check`` command, ``python -m calibration.debug_precision
check``, which runs the engine through Polygraphy's ``TrtRunner`` on
``inputs.json`` and passes when the mean SSIM against ``reference.json``
(:class:`calibration.comparison.SsimCompareFunc`) reaches ``--min-ssim``.
Polygraphy bisects (``--mode bisect``) over the layer order to the fewest
marked layers that pass.

What it searches depends on the model (``svbr.precision``), because layer
precisions only apply to *weakly typed* networks, so this is TensorRT 10 only
(TensorRT 11 builds strongly typed networks only, where the graph's types
decide: that is what ``svbr calibrate --keep-fp16`` bakes into the ONNX graph):

* an FP32 model (``svbr export``): TensorRT's implicit INT8 (``--int8 --fp16``,
  its entropy calibrator 2 fed by ``calibration_loader.py``), with layers
  marked float16 (``-p float16``) from the output end (``--dir reverse``): the
  TensorRT analogue of ``--keep-fp16``, for a contiguous run of layers;
* an INT8 or mixed QDQ model (``svbr calibrate``): explicit quantization, where
  the Q/DQ pairs pin every quantized convolution to INT8 whatever is marked;
  with ``--int8 --fp16`` TensorRT may run the remaining float layers in float16,
  and the search finds which of them need float32 (``-p float32``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from calibration.dataset import DEFAULT_CACHE_DIR, SetSettings, build_set, read_window_sample
from calibration.mixed import DEFAULT_EVAL_SAMPLES, DEFAULT_TARGET_SSIM
from runtime.constants import HALO_PX, INPUT_IMAGE_NAME, INPUT_MAP_NAME

#: Files ``prepare`` writes into the work directory.
INPUTS, REFERENCE, LOADER, COMMAND, ENGINE = (
    "inputs.json",
    "reference.json",
    "calibration_loader.py",
    "command.json",
    "polygraphy_debug.engine",
)

_LOADER_SCRIPT = '''"""Polygraphy --data-loader-script: the calibration windows of `svbr calibrate` (written by
calibration.debug_precision prepare)."""
import numpy as np

PATHS = {paths!r}


def load_data():
    for path in PATHS:
        with np.load(path) as data:
            blurry = data["blurry"].astype(np.float32) / 255.0
            radius = data["radius_px"].astype(np.float32)
        yield {{"{image}": np.ascontiguousarray(blurry.transpose(2, 0, 1)[None]),
               "{blur_map}": np.clip(radius / {max_radius}, 0.0, 1.0)[None, None]}}
'''


def _model_precision(model: Path) -> str:
    import onnx

    metadata = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    if metadata.get("svbr.io", "float32") != "float32":
        raise ValueError(f"{model} has uint8 I/O; debug the float-I/O model (svbr export --io float32)")
    return metadata.get("svbr.precision", "fp32")


def debug_precision_argv(
    model: Path,
    workdir: Path,
    window: int,
    precision: str,
    min_ssim: float = DEFAULT_TARGET_SSIM,
    mode: str = "bisect",
    python: str = sys.executable,
) -> list[str]:
    """The ``polygraphy debug precision`` command line for ``model`` (see the module notes).

    Args:
        model: the ONNX model to debug.
        workdir: the folder ``prepare`` filled (the command runs there).
        window: the window edge (px) of ``inputs.json``; the engines get exactly that profile.
        precision: the model's ``svbr.precision`` (fp32: implicit INT8; int8: explicit, QDQ).
        min_ssim: the check's mean SSIM threshold.
        mode: Polygraphy's ``bisect`` or ``linear``.
        python: the interpreter that runs the check.
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"debug precision takes an FP32 or INT8 model, not {precision}")
    workdir = Path(workdir).resolve()
    shapes = {INPUT_IMAGE_NAME: [1, 3, window, window], INPUT_MAP_NAME: [1, 1, window, window]}
    argv = ["polygraphy", "debug", "precision", str(Path(model).resolve())]
    for option in ("--trt-min-shapes", "--trt-opt-shapes", "--trt-max-shapes"):
        argv += [option, *(f"{name}:{json.dumps(shape).replace(' ', '')}" for name, shape in shapes.items())]
    argv += ["--int8", "--fp16", "--precision-constraints", "obey", "--mode", mode]
    if precision == "fp32":
        argv += [
            "-p",
            "float16",
            "--dir",
            "reverse",
            "--data-loader-script",
            f"{workdir / LOADER}:load_data",
            "--calibration-cache",
            str(workdir / "calibration.cache"),
        ]
    else:
        argv += ["-p", "float32", "--dir", "forward"]
    argv += [
        "--iter-artifact",
        str(workdir / ENGINE),
        "--check",
        python,
        "-m",
        "calibration.debug_precision",
        "check",
        "--engine",
        str(workdir / ENGINE),
        "--workdir",
        str(workdir),
        "--min-ssim",
        str(min_ssim),
    ]
    return argv


def prepare(
    model: Path,
    workdir: Path,
    calibration: SetSettings,
    samples: int = DEFAULT_EVAL_SAMPLES,
    cache_dir: Path = DEFAULT_CACHE_DIR,
    reference_model: Path | None = None,
    min_ssim: float = DEFAULT_TARGET_SSIM,
    threads: int | None = None,
    progress: bool = True,
) -> dict:
    """Write inputs, reference outputs, the calibration loader and the command (no TensorRT needed).

    Args:
        model: the model to debug (FP32, INT8 or mixed, float I/O).
        workdir: output folder.
        calibration: the calibration set (its first ``samples`` windows are the check's inputs).
        reference_model: the FP32 model whose outputs are the reference (default: the one named
            by ``svbr.precision_source`` next to ``model``, else ``model`` when it is FP32).
    """
    from polygraphy.comparator import Comparator

    from calibration.comparison import onnxruntime_runner, quiet_polygraphy

    model, workdir = Path(model), Path(workdir)
    precision = _model_precision(model)
    if reference_model is None:
        if precision == "fp32":
            reference_model = model
        else:
            raise ValueError("an INT8 model needs --reference (its FP32 source model)")
    workdir.mkdir(parents=True, exist_ok=True)
    paths = build_set(calibration, samples, cache_dir, progress=progress)
    feeds = []
    for path in paths:
        image, blur_map = read_window_sample(path).network_inputs()
        feeds.append({INPUT_IMAGE_NAME: image, INPUT_MAP_NAME: blur_map})
    windows = {feed[INPUT_IMAGE_NAME].shape[2:] for feed in feeds}
    if len(windows) != 1 or len(set(next(iter(windows)))) != 1:
        raise ValueError(f"the windows must all be one square size, got {sorted(windows)}")
    window = int(next(iter(windows))[0])
    for name in (INPUTS, REFERENCE):
        (workdir / name).unlink(missing_ok=True)
    with quiet_polygraphy():
        Comparator.run(
            [onnxruntime_runner(Path(reference_model), threads=threads, name="fp32-reference")],
            data_loader=feeds,
            save_inputs_path=str(workdir / INPUTS),
            save_outputs_path=str(workdir / REFERENCE),
        )
    from runtime.constants import MAX_RADIUS_PX

    (workdir / LOADER).write_text(
        _LOADER_SCRIPT.format(
            paths=[str(Path(p).resolve()) for p in paths],
            image=INPUT_IMAGE_NAME,
            blur_map=INPUT_MAP_NAME,
            max_radius=float(MAX_RADIUS_PX),
        )
    )
    argv = debug_precision_argv(model, workdir, window, precision, min_ssim)
    info = {
        "model": str(model),
        "precision": precision,
        "reference": str(reference_model),
        "window": window,
        "samples": len(paths),
        "min_ssim": min_ssim,
        "argv": argv,
        "command": shlex.join(argv),
    }
    (workdir / COMMAND).write_text(json.dumps(info, indent=1))
    return info


def check(
    workdir: Path,
    engine: Path | None = None,
    onnx_model: Path | None = None,
    min_ssim: float = DEFAULT_TARGET_SSIM,
    threads: int | None = None,
) -> tuple[bool, float]:
    """Run an engine (``TrtRunner``) or an ONNX model (``OnnxrtRunner``) on ``inputs.json``; compare with
    ``reference.json`` through Polygraphy's comparator and our SSIM. Returns (passed, mean SSIM)."""
    from polygraphy.comparator import Comparator, RunResults
    from polygraphy.json import load_json

    from calibration.comparison import SsimCompareFunc, onnxruntime_runner, quiet_polygraphy, tensorrt_runner

    if (engine is None) == (onnx_model is None):
        raise ValueError("check one engine or one ONNX model")
    workdir = Path(workdir)
    with quiet_polygraphy():
        feeds = load_json(str(workdir / INPUTS), "inference input data")
        reference = RunResults.load(str(workdir / REFERENCE))
    if engine is not None:
        from runtime.tensorrt_build import require_tensorrt

        require_tensorrt()
        runner = tensorrt_runner(Path(engine), name="candidate")
    else:
        runner = onnxruntime_runner(Path(onnx_model), threads=threads, name="candidate")
    with quiet_polygraphy():
        results = Comparator.run([runner], data_loader=feeds)
        pair = RunResults()
        pair.append(reference[0])
        pair.append(results[0])
        accuracy = Comparator.compare_accuracy(pair, compare_func=SsimCompareFunc())
    (iterations,) = accuracy[0].values()
    mean = float(np.mean([result.ssim for iteration in iterations for result in iteration.values()]))
    return bool(mean >= min_ssim), mean


def run(workdir: Path) -> int:
    """Execute the prepared ``polygraphy debug precision`` command in ``workdir`` (needs TensorRT)."""
    from runtime.tensorrt_build import require_tensorrt

    require_tensorrt()
    info = json.loads((Path(workdir) / COMMAND).read_text())
    return subprocess.run(info["argv"], cwd=workdir).returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m calibration.debug_precision",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prep = commands.add_parser("prepare", help="write inputs, reference outputs and the command (no TensorRT)")
    prep.add_argument("--model", type=Path, required=True, help="FP32, INT8 or mixed ONNX model (float I/O)")
    prep.add_argument("--reference", type=Path, default=None, help="its FP32 model (default: --model if FP32)")
    prep.add_argument("--workdir", type=Path, required=True)
    prep.add_argument("--images", type=Path, required=True, help="the sharp images of `svbr calibrate --images`")
    prep.add_argument("--samples", type=int, default=DEFAULT_EVAL_SAMPLES, help="calibration windows to check on")
    prep.add_argument("--tile", type=int, default=256, help="deployment tile (px); windows are tile + 2*halo")
    prep.add_argument("--halo", type=int, default=HALO_PX)
    prep.add_argument("--split-seed", type=int, default=0)
    prep.add_argument("--seed", type=int, default=0)
    prep.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR)
    prep.add_argument("--min-ssim", type=float, default=DEFAULT_TARGET_SSIM)
    prep.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for the reference")
    runp = commands.add_parser("run", help="run the prepared polygraphy debug precision (TensorRT 10)")
    runp.add_argument("--workdir", type=Path, required=True)
    chk = commands.add_parser("check", help="the --check command: exit 0 when mean SSIM >= --min-ssim")
    chk.add_argument("--workdir", type=Path, required=True)
    target = chk.add_mutually_exclusive_group(required=True)
    target.add_argument("--engine", type=Path)
    target.add_argument("--onnx", type=Path)
    chk.add_argument("--min-ssim", type=float, default=DEFAULT_TARGET_SSIM)
    chk.add_argument("--threads", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from runtime.tensorrt_build import TensorRTUnavailable

    try:
        if args.command == "prepare":
            settings = SetSettings(
                "calibration", str(args.images.resolve()), args.split_seed, args.seed, args.tile, args.halo
            )
            info = prepare(
                args.model,
                args.workdir,
                settings,
                args.samples,
                args.cache,
                args.reference,
                args.min_ssim,
                args.threads,
            )
            print(info["command"])
            return 0
        if args.command == "run":
            return run(args.workdir)
        passed, mean = check(args.workdir, args.engine, args.onnx, args.min_ssim, args.threads)
        print(f"mean SSIM {mean:.5f} {'>=' if passed else '<'} {args.min_ssim}: {'pass' if passed else 'fail'}")
        return 0 if passed else 1
    except TensorRTUnavailable as error:
        print(f"debug_precision: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as error:
        print(f"debug_precision: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
