"""Shared fixtures: a randomly initialised SVBR-Net and its ONNX export.

The trained weights are not needed for contract tests: any weights exercise
export, BatchNorm folding, parity and tiling. BatchNorm statistics are
randomised (so folding changes the weights measurably) and the last layer is
randomised (the residual head starts at zero, i.e. the identity) and scaled so
outputs differ clearly from the input, which would make parity and tiling
comparisons too easy to pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# --- markers (registered in pyproject.toml): the fast loop is `pytest -m "not slow"` -------------------
# Marked here, in one table, rather than in each file. `slow`: modules that train, validate the bundled
# model against PyTorch, or start subprocesses, Ray or the native build, and single long tests (and the
# tests marked `slow` in their own files). `gpu`: tests that run only with TensorRT and a GPU. `dataset`: tests
# that need the photo sets under ../shared/datasets. CI runs everything (`python -m pytest -q`).
SLOW_MODULES = {
    "test_distributed",
    "test_native",
    "test_ray_archive",
    "test_stream_cli",
    "test_train",
    "test_validate",
}
SLOW_TESTS = {  # single tests, as "module::name"; each took 10 s or more in `--durations` of the fast loop
    "test_calibration::test_cli_makes_both_precisions",  # 17 s
    "test_model::test_receptive_field_by_gradient",  # 31-44 s per head
    "test_benchmarks::test_latency_writes_every_file_with_one_row_per_configuration",  # 12 s
    "test_real_benchmark::test_benchmark_on_two_scenes",  # 10 s
    "test_uint8_io::test_deblurrer_feeds_uint8_windows_straight_through",  # 10 s
}
GPU_REASON = re.compile(r"tensorrt.*(not importable|not installed)|needs a (CUDA )?GPU", re.IGNORECASE)
DATASET_REASON = re.compile(r"sharp images not found|shared/datasets|Pixel 4 data", re.IGNORECASE)


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module is not None else ""
        if module in SLOW_MODULES or f"{module}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        reasons = " ".join(str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif"))
        if GPU_REASON.search(reasons):
            item.add_marker(pytest.mark.gpu)
        if DATASET_REASON.search(reasons):
            item.add_marker(pytest.mark.dataset)


def make_random_svbrnet(seed: int = 0, head: str = "residual"):
    """An eval-mode ``SVBRNet`` with random weights and random BatchNorm statistics."""
    import torch

    from training.model import SVBRNet

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = SVBRNet(head).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.copy_(0.1 * torch.randn(channels, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(channels, generator=generator))
                module.weight.copy_(0.5 + torch.rand(channels, generator=generator))
                module.bias.copy_(0.1 * torch.randn(channels, generator=generator))
        head_weight = model.image_branch.out[0].weight
        if head == "residual":
            head_weight.copy_(0.05 * torch.randn(head_weight.shape, generator=generator))
        else:
            head_weight.mul_(15.0)
    return model


def make_tiny_onnx_model(seed: int = 7) -> onnx.ModelProto:  # noqa: F821
    """A stand-in of SVBR-Net for calibration tests, random weights from ``seed``:
    image, blur_map -> Concat -> conv_a -> ReLU -> {conv_b -> ReLU, conv_c (1×1)} -> Add -> AveragePool ->
    up (ConvTranspose ×2) -> ReLU -> conv_out -> Add(image) -> Clip -> sharp."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)

    def weight(name, shape, scale):
        return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)

    initializers = [
        weight("wa", (8, 4, 3, 3), 0.3),
        weight("ba", (8,), 0.1),
        weight("wb", (8, 8, 3, 3), 0.15),
        weight("bb", (8,), 0.1),
        weight("wc", (8, 8, 1, 1), 0.3),
        weight("bc", (8,), 0.1),
        weight("wu", (8, 8, 2, 2), 0.2),
        weight("bu", (8,), 0.1),
        weight("wo", (3, 8, 3, 3), 0.05),
        weight("bo", (3,), 0.0),
        numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
    ]
    nodes = [
        helper.make_node("Concat", ["image", "blur_map"], ["x"], axis=1, name="concat"),
        helper.make_node("Conv", ["x", "wa", "ba"], ["a"], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
        helper.make_node("Conv", ["ra", "wb", "bb"], ["b"], pads=[1, 1, 1, 1], name="conv_b"),
        helper.make_node("Relu", ["b"], ["rb"], name="relu_b"),
        helper.make_node("Conv", ["ra", "wc", "bc"], ["c"], name="conv_c"),
        helper.make_node("Add", ["rb", "c"], ["s"], name="add"),
        helper.make_node("AveragePool", ["s"], ["p"], kernel_shape=[2, 2], strides=[2, 2], name="pool"),
        helper.make_node("ConvTranspose", ["p", "wu", "bu"], ["u"], strides=[2, 2], name="up"),
        helper.make_node("Relu", ["u"], ["ru"], name="relu_u"),
        helper.make_node("Conv", ["ru", "wo", "bo"], ["corr"], pads=[1, 1, 1, 1], name="conv_out"),
        helper.make_node("Add", ["image", "corr"], ["y"], name="head_add"),
        helper.make_node("Clip", ["y", "lo", "hi"], ["sharp"], name="head_clip"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"]),
            helper.make_tensor_value_info("blur_map", TensorProto.FLOAT, ["N", 1, "H", "W"]),
        ],
        [helper.make_tensor_value_info("sharp", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in {"svbr.precision": "fp32", "svbr.head": "residual"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.fixture
def tiny_onnx_model(tmp_path) -> Path:
    """A small random graph with SVBR-Net's contract (image, blur_map -> sharp, residual head) and five
    weighted layers, saved as ``tiny.onnx`` in a fresh folder: calibration tests in seconds."""
    import onnx

    path = tmp_path / "tiny.onnx"
    onnx.save(make_tiny_onnx_model(), str(path))
    return path


@pytest.fixture(scope="session")
def random_svbrnet():
    """The randomly initialised eval-mode PyTorch network (do not modify it)."""
    return make_random_svbrnet(seed=0)


@pytest.fixture(scope="session")
def random_onnx_model(random_svbrnet, tmp_path_factory) -> Path:
    """``random_svbrnet`` exported with the default exporter and opset: a valid runtime model."""
    from export.onnx_export import export_onnx

    return export_onnx(random_svbrnet, tmp_path_factory.mktemp("models") / "svbrnet_random.onnx")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one thread avoids OpenMP threads stalling each other on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
