"""Polygraphy in `svbr validate` (runners, comparator, our SSIM) and `polygraphy debug precision` (TensorRT side)."""

from __future__ import annotations

import argparse
import json
from collections import OrderedDict

import numpy as np
import onnx
import pytest
from test_calibration import make_images
from test_mixed_precision import tiny_model

from calibration.cli import calibrate
from calibration.comparison import PSNR_CAP_DB, CallableRunner, SsimCompareFunc, SsimResult, onnxruntime_runner
from calibration.dataset import SetSettings, build_set, iterate_set
from calibration.debug_precision import COMMAND, INPUTS, LOADER, REFERENCE, check, debug_precision_argv, main, prepare
from calibration.int8 import Int8Settings
from calibration.validate import validate
from runtime.metrics import psnr, ssim
from runtime.tensorrt_build import tensorrt_installed


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("polygraphy")
    fp32 = root / "tiny.onnx"
    onnx.save(tiny_model(), str(fp32))
    images = make_images(root / "images")
    calibration = SetSettings("calibration", str(images), seed=3, size=16, halo=8)
    calibrate(
        fp32,
        root / "tiny_int8.onnx",
        "int8",
        calibration=calibration,
        samples=3,
        int8=Int8Settings("minmax"),
        cache_dir=root / "cache",
        progress=False,
    )
    samples = list(
        iterate_set(build_set(SetSettings("validation", str(images), size=32), 3, root / "cache", progress=False))
    )
    return {
        "root": root,
        "fp32": fp32,
        "int8": root / "tiny_int8.onnx",
        "images": images,
        "calibration": calibration,
        "samples": samples,
    }


def ort_function(path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda image, blur_map: session.run(None, {"image": image, "blur_map": blur_map})[0]


def test_ssim_compare_func_is_our_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((1, 3, 24, 20), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.02, a.shape).astype(np.float32), 0, 1)
    ((name, result),) = SsimCompareFunc()({"sharp": a}, {"sharp": b}).items()
    image = lambda x: x[0].astype(np.float64).transpose(1, 2, 0)  # noqa: E731
    assert name == "sharp"
    assert result.ssim == ssim(image(a), image(b)) and result.psnr_db == psnr(image(a), image(b))
    assert result.max_abs == pytest.approx(float(np.abs(a - b).max()))
    assert bool(result)  # no per-sample threshold: finite values pass
    assert not SsimCompareFunc(min_ssim=0.9999)({"sharp": a}, {"sharp": b})["sharp"]
    same = SsimCompareFunc()({"sharp": a}, {"sharp": a})["sharp"]
    assert same.ssim == 1.0 and same.psnr_db == PSNR_CAP_DB and same.max_abs == 0
    assert not SsimCompareFunc()({"sharp": a}, {"sharp": a[:, :, :8]})["sharp"]  # shapes differ: fails
    assert not SsimResult(float("nan"), 0.0, 0.0)


def test_comparator_with_polygraphy_runners(setup):
    """Polygraphy's ONNX Runtime runner and our callable runner agree through Comparator + SSIM."""
    from polygraphy.comparator import Comparator

    feeds = [dict(zip(("image", "blur_map"), s.network_inputs())) for s in setup["samples"]]
    runners = [
        CallableRunner(ort_function(setup["fp32"]), name="callable"),
        onnxruntime_runner(setup["fp32"], name="onnxrt"),
        onnxruntime_runner(setup["int8"], threads=1, name="onnxrt-int8"),
    ]
    results = Comparator.run(runners, data_loader=feeds)
    accuracy = Comparator.compare_accuracy(results, comparisons=[(0, 1), (0, 2)], compare_func=SsimCompareFunc())
    same, quantized = (pair for pair in accuracy[0].values())
    assert len(same) == 3 and all(it["sharp"].ssim == 1.0 and it["sharp"].max_abs == 0 for it in same)
    assert all(0 < it["sharp"].ssim < 1 for it in quantized)


def test_validate_scores_through_polygraphy_on_onnxruntime(setup):
    samples = setup["samples"]
    reference = ort_function(setup["fp32"])
    report = validate([setup["fp32"], setup["int8"]], reference, samples, progress=False, threads=1)
    fp32, int8 = report["models"]
    assert fp32["backend"] == int8["backend"] == "onnxruntime-cpu"
    assert fp32["polygraphy"]["runner"] == "OnnxrtRunner"
    assert fp32["vs_pytorch"]["ssim_min"] == 1.0 and fp32["passed"]
    # The comparator's scores are our SSIM of the same outputs, computed here independently.
    run = ort_function(setup["int8"])
    expected = []
    for sample in samples:
        inputs = sample.network_inputs()
        ref, out = reference(*inputs)[0].transpose(1, 2, 0), run(*inputs)[0].transpose(1, 2, 0)
        expected.append(ssim(ref.astype(np.float64), out.astype(np.float64)))
    got = [entry["ssim_vs_pytorch"] for entry in int8["per_sample"]]
    np.testing.assert_allclose(got, expected, atol=2e-6)
    assert int8["vs_pytorch"]["ssim_mean"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert int8["polygraphy"]["samples_at_threshold"] == sum(v >= 0.98 for v in expected)
    json.dumps(report, allow_nan=False)


def test_validate_prints_nothing_of_polygraphy(setup, capsys):
    """stdout is the table's: Polygraphy's logging (a failed per-sample check is an [E] line) stays quiet."""
    validate([setup["int8"]], ort_function(setup["fp32"]), setup["samples"], progress=False, threads=1)
    captured = capsys.readouterr()
    assert "[E]" not in captured.out + captured.err and "[W]" not in captured.out + captured.err


def test_validate_uint8_io_model_runs_inside_the_adapter(setup, tmp_path):
    from export.io_wrap import wrap_uint8_io

    u8 = tmp_path / "tiny_u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(setup["fp32"]))), str(u8))
    report = validate([u8], ort_function(setup["fp32"]), setup["samples"], progress=False, threads=1)
    (entry,) = report["models"]
    assert entry["polygraphy"]["runner"] == "Uint8IORunner"
    assert entry["reference"] == "pytorch-fp32 rounded to uint8"
    assert entry["vs_pytorch"]["max_abs"] <= 1 / 255 + 1e-6


def test_validate_other_backends_through_the_callable_runner(setup):
    """A registry backend without a Polygraphy runner (here "auto") runs inside CallableRunner."""
    report = validate(
        [setup["fp32"], setup["int8"]],
        ort_function(setup["fp32"]),
        setup["samples"][:2],
        progress=False,
        backend="auto",
    )
    fp32, int8 = report["models"]
    assert fp32["polygraphy"]["runner"] == "CallableRunner" and fp32["backend"] == "auto"
    assert fp32["vs_pytorch"]["max_abs"] == 0 and int8["precision"] == "int8"


# --- polygraphy debug precision ---------------------------------------------------------------------


def polygraphy_parser():
    from polygraphy.tools.registry import TOOL_REGISTRY

    parser = argparse.ArgumentParser()
    tools = parser.add_subparsers(dest="tools")
    for tool in TOOL_REGISTRY:
        tool.setup_parser(tools)
    return parser


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_debug_precision_command_is_valid_polygraphy(precision, tmp_path):
    argv = debug_precision_argv(tmp_path / "m.onnx", tmp_path, 424, precision, min_ssim=0.99)
    assert argv[:3] == ["polygraphy", "debug", "precision"]
    args, unknown = polygraphy_parser().parse_known_args(argv[1:])
    assert unknown == []
    assert args.int8 and args.fp16 and args.mode == "bisect"
    assert args.precision == ("float16" if precision == "fp32" else "float32")
    assert args.trt_min_shapes == [["image:[1,3,424,424]", "blur_map:[1,1,424,424]"]]
    assert args.check[args.check.index("--min-ssim") + 1] == "0.99"
    assert args.check[1:4] == ["-m", "calibration.debug_precision", "check"]
    if precision == "fp32":  # implicit INT8: TensorRT's calibrator reads our windows
        assert args.data_loader_script.endswith(f"{LOADER}:load_data")
    with pytest.raises(ValueError):
        debug_precision_argv(tmp_path / "m.onnx", tmp_path, 424, "fp16")


def test_debug_precision_prepare_and_check_on_onnxruntime(setup, tmp_path, capsys):
    work = tmp_path / "debug"
    info = prepare(
        setup["int8"],
        work,
        setup["calibration"],
        samples=2,
        cache_dir=setup["root"] / "cache",
        reference_model=setup["fp32"],
        min_ssim=0.99,
        progress=False,
    )
    assert info["precision"] == "int8" and info["window"] == 32 and info["samples"] == 2
    for name in (INPUTS, REFERENCE, LOADER, COMMAND):
        assert (work / name).is_file()
    assert json.loads((work / COMMAND).read_text())["argv"] == info["argv"]
    # The data loader script yields the windows the calibrator would see.
    namespace: dict = {}
    exec((work / LOADER).read_text(), namespace)
    first = next(namespace["load_data"]())
    assert first["image"].shape == (1, 3, 32, 32) and first["blur_map"].shape == (1, 1, 32, 32)
    # The --check command, on ONNX Runtime: the FP32 model passes exactly, the INT8 one is scored below 1.
    assert check(work, onnx_model=setup["fp32"], min_ssim=0.99) == (True, 1.0)
    passed, mean = check(work, onnx_model=setup["int8"], min_ssim=0.999999)
    assert not passed and 0 < mean < 1
    assert main(["check", "--workdir", str(work), "--onnx", str(setup["int8"]), "--min-ssim", "0.999999"]) == 1
    assert main(["check", "--workdir", str(work), "--onnx", str(setup["fp32"])]) == 0
    assert "pass" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--reference"):
        prepare(setup["int8"], work, setup["calibration"], samples=1, cache_dir=setup["root"] / "cache", progress=False)


@pytest.mark.skipif(tensorrt_installed(), reason="TensorRT is installed: the next test runs it")
def test_debug_precision_run_without_tensorrt_says_so(setup, tmp_path, capsys):
    work = tmp_path / "debug"
    prepare(setup["fp32"], work, setup["calibration"], samples=1, cache_dir=setup["root"] / "cache", progress=False)
    assert main(["run", "--workdir", str(work)]) == 2
    assert "TensorRT" in capsys.readouterr().err


@pytest.mark.skipif(not tensorrt_installed(), reason="TensorRT is not installed")
def test_debug_precision_runs_on_tensorrt(setup, tmp_path):  # pragma: no cover - needs a GPU with TensorRT 10
    work = tmp_path / "debug"
    prepare(
        setup["int8"],
        work,
        setup["calibration"],
        samples=2,
        cache_dir=setup["root"] / "cache",
        reference_model=setup["fp32"],
        min_ssim=0.9,
        progress=False,
    )
    assert main(["run", "--workdir", str(work)]) == 0
    passed, mean = check(work, engine=work / "polygraphy_debug.engine", min_ssim=0.9)
    assert 0 < mean <= 1


def test_feeds_are_plain_float32_dicts(setup):
    """The feed dicts Comparator.run gets are the network contract (what every runner is given)."""
    runner = CallableRunner(lambda image, blur_map: image, name="identity")
    with runner:
        metadata = runner.get_input_metadata(use_numpy_dtypes=False)
        out = runner.infer(OrderedDict(zip(("image", "blur_map"), setup["samples"][0].network_inputs())))
    assert list(metadata) == ["image", "blur_map"] and out["sharp"].dtype == np.float32
