"""`svbr calibrate --precision int8 --target cpu`: a QDQ graph ONNX Runtime's CPU provider runs as integer kernels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from benchmarks.latency import onnxruntime_cpu_graph
from calibration.cli import calibrate, main
from calibration.dataset import SetSettings
from calibration.graph import check_int8_graph, check_precision_graph, int8_target
from calibration.int8 import Int8Settings
from export.io_wrap import wrap_uint8_io
from runtime.backends import create_backend


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    import cv2

    folder = tmp_path_factory.mktemp("sharp")
    rng = np.random.default_rng(0)
    for i in range(6):
        image = rng.integers(0, 256, (44, 60, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"photo{i:02d}.png"), cv2.GaussianBlur(image, (5, 5), 1.5))
    return folder


@pytest.fixture(scope="module")
def cpu_int8(random_onnx_model, images, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8cpu")
    settings = SetSettings("calibration", str(images), split_seed=0, seed=3, size=16, halo=8)
    summary = calibrate(
        random_onnx_model,
        folder / "int8_cpu.onnx",
        "int8",
        calibration=settings,
        samples=2,
        int8=Int8Settings("minmax", target="cpu"),
        cache_dir=folder / "cache",
        progress=False,
    )
    return folder / "int8_cpu.onnx", summary


def test_graph_is_the_qlinearconv_pattern(cpu_int8):
    path, summary = cpu_int8
    model = onnx.load(str(path))
    assert int8_target(model) == "cpu"
    assert summary["weighted_nodes"] == 72 and summary["weight_pairs"] == 72
    check_precision_graph(model, "int8")
    with pytest.raises(ValueError, match="TensorRT"):  # asymmetric uint8: not TensorRT's pattern
        check_int8_graph(model)
    arrays = [numpy_helper.to_array(init) for init in model.graph.initializer]
    weights = [w for w in arrays if w.dtype == np.int8 and w.ndim == 4]
    assert len(weights) == 72 and all(
        np.abs(w.astype(int)).max() <= 64 for w in weights
    )  # 2·255·64 < 2^15: no saturation


def test_onnxruntime_cpu_runs_integer_kernels(cpu_int8):
    operators = onnxruntime_cpu_graph(cpu_int8[0], 1)["operators"]
    assert operators.get("QLinearConv") == 72
    assert "Conv" not in operators and "FusedConv" not in operators  # no float convolution left
    assert operators.get("QLinearAdd", 0) >= 16 and operators.get("QLinearConcat") == 9


def test_runs_close_to_fp32_with_the_float_skip_path(cpu_int8, random_onnx_model):
    model = onnx.load(str(cpu_int8[0]))
    add = next(n for n in model.graph.node if n.op_type == "Add" and "image" in n.input)
    assert next(n for n in model.graph.node if n.op_type == "Clip").input[0] == add.output[0]
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 32, 40), dtype=np.float32)
    radius = rng.random((1, 1, 32, 40), dtype=np.float32)
    with (
        create_backend("onnxruntime-cpu", random_onnx_model, threads=1) as fp32,
        create_backend("onnxruntime-cpu", cpu_int8[0], threads=1) as int8,
    ):
        assert int8.precision == "int8"
        difference = np.abs(int8.run(image, radius) - fp32.run(image, radius))
    assert difference.mean() < 0.05


def test_cli_target_cpu_with_uint8_io(random_onnx_model, images, tmp_path):
    source = tmp_path / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model))), str(source))
    out = tmp_path / "int8_cpu_u8.onnx"
    assert (
        main(
            [
                "--precision",
                "int8",
                "--target",
                "cpu",
                "--onnx",
                str(source),
                "--out",
                str(out),
                "--images",
                str(images),
                "--samples",
                "2",
                "--tile",
                "16",
                "--halo",
                "8",
                "--method",
                "minmax",
                "--cache",
                str(tmp_path / "cache"),
                "-q",
            ]
        )
        == 0
    )
    assert onnxruntime_cpu_graph(out, 1)["operators"].get("QLinearConv") == 72
    with create_backend("onnxruntime-cpu", out, threads=1) as backend:
        assert backend.io == "uint8"
        sharp = backend.run(np.zeros((1, 32, 32, 3), np.uint8), np.ones((1, 32, 32), np.float32))
    assert sharp.dtype == np.uint8 and sharp.shape == (1, 32, 32, 3)
