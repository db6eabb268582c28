"""The roofline projection's arithmetic, against hand-counted layers."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.roofline import DEVICES, Device, main, project
from calibration.graph import LayerCost, conv_costs


def two_layer_graph() -> onnx.ModelProto:
    """image 1×3×H×W → Conv 3→8, 3×3, stride 2 → ConvTranspose 8→4, 2×2, stride 2 → 1×4×H×W."""
    conv_w = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "conv_w")
    up_w = numpy_helper.from_array(np.zeros((8, 4, 2, 2), np.float32), "up_w")
    nodes = [
        helper.make_node("Conv", ["image", "conv_w"], ["half"], name="down", strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["half", "up_w"], ["out"], name="up", strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [conv_w, up_w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_conv_costs_count_multiply_accumulates_and_activations():
    down, up = conv_costs(two_layer_graph(), height=16, width=20)
    assert down == LayerCost("down", "Conv", 2 * (8 * 10) * (8 * 3 * 3 * 3), 3 * 16 * 20 + 8 * 8 * 10, 8 * 3 * 9)
    # ConvTranspose: every input pixel scatters C_in × C_out × k × k products.
    assert up == LayerCost("up", "ConvTranspose", 2 * (8 * 10) * (8 * 4 * 2 * 2), 8 * 8 * 10 + 4 * 16 * 20, 8 * 4 * 4)


def test_project_takes_the_slower_roof_per_layer():
    device = Device("test", {"int8": 1.0, "fp16": 0.5}, bandwidth_gb_s=1000.0, source="")  # 10^12 ops/s, 10^12 bytes/s
    compute_bound = LayerCost("a", "Conv", flops=4_000_000_000, activation_elements=1_000_000_000, weight_elements=0)
    memory_bound = LayerCost("b", "Conv", flops=1_000_000_000, activation_elements=3_000_000_000, weight_elements=0)
    result = project([compute_bound, memory_bound], device, "int8")
    # a: max(4 ms, 1 ms) = 4 ms; b: max(1 ms, 3 ms) = 3 ms (1 byte per int8 element).
    assert result["ms"] == pytest.approx(7.0)
    assert result["memory_bound_time_share"] == pytest.approx(3 / 7)
    assert project([memory_bound], device, "fp16")["ms"] == pytest.approx(6.0)  # 2 bytes, and 2 ms of compute


def test_devices_state_dense_throughput_as_half_the_sparse_figure():
    for device in DEVICES:
        assert device.dense_tops["fp16"] == pytest.approx(device.dense_tops["int8"] / 2)


def test_cli_writes_the_tables(tmp_path, capsys):
    assert main(["--sizes", "64x48", "--out", str(tmp_path)]) == 0
    assert "| 64x48 |" in capsys.readouterr().out
    assert (tmp_path / "roofline.json").is_file() and (tmp_path / "roofline.md").is_file()


def test_precision_table_joins_validation_and_latency_by_model_path(tmp_path):
    from benchmarks.precision_table import join, markdown

    validate = {
        "blurry_input": {"psnr_mean_db": 24.0, "ssim_mean": 0.7},
        "models": [
            {
                "model": str(tmp_path / "a.onnx"),
                "precision": "int8",
                "passed": True,
                "vs_pytorch": {"ssim_mean": 0.99, "ssim_min": 0.97},
                "vs_ground_truth": {"psnr_mean_db": 26.5, "ssim_mean": 0.79},
            }
        ],
    }
    latency = {
        "models": {"fp32": str(tmp_path / "b.onnx"), "int8": str(tmp_path / "x" / ".." / "a.onnx")},
        "results": [
            {"model": "numpy normalisation alone", "size": "8x8", "p50_ms": 1.0},
            {"model": "fp32", "size": "8x8", "p50_ms": 100.0, "ratio_vs_first": 1.0},
            {"model": "int8", "size": "8x8", "p50_ms": 50.0, "ratio_vs_first": 2.0},
        ],
    }
    rows = join(validate, latency, "8x8")
    assert [r["label"] for r in rows] == ["fp32", "int8"]
    assert rows[0]["ssim_vs_pytorch"] is None
    assert rows[1]["ssim_vs_pytorch"] == (0.99, 0.97) and rows[1]["speedup"] == 2.0
    table = markdown(rows, "8x8", validate)
    assert "| int8 | int8 | 0.99000 / 0.97000 | 26.50 / 0.7900 | pass | 50 | 2.00× |" in table
