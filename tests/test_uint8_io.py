"""uint8-I/O graphs (`svbr export --io uint8`): pre/post-processing in the graph, parity, Deblurrer, calibration."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from calibration.cli import calibrate
from calibration.dataset import SetSettings
from calibration.graph import check_precision_graph, metadata_of
from export.io_wrap import IO_OPS, IO_PREFIX, io_kind, strip_uint8_io, wrap_uint8_io
from export.onnx_export import check_graph, check_uint8_parity
from export.onnx_export import main as export_main
from runtime import Deblurrer
from runtime.backends import create_backend


@pytest.fixture(scope="module")
def uint8_models(random_onnx_model, tmp_path_factory):
    """The random-init float export wrapped with BGR and RGB uint8 I/O."""
    folder = tmp_path_factory.mktemp("uint8")
    paths = {}
    for order in ("bgr", "rgb"):
        paths[order] = folder / f"u8_{order}.onnx"
        onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model)), order), str(paths[order]))
    return paths


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_graph_io_dtypes_layout_and_metadata(uint8_models):
    model = onnx.load(str(uint8_models["bgr"]))
    check_graph(model, 17)
    inputs = {v.name: v for v in model.graph.input}
    (output,) = model.graph.output
    assert inputs["image"].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert _dims(inputs["image"]) == ["N", "H", "W", 3]
    assert inputs["blur_map"].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(inputs["blur_map"]) == ["N", "H", "W"]
    assert output.type.tensor_type.elem_type == onnx.TensorProto.UINT8 and _dims(output) == ["N", "H", "W", 3]
    metadata = metadata_of(model)
    assert metadata["svbr.io"] == "uint8" and metadata["svbr.channel_order"] == "BGR"
    assert io_kind(model) == "uint8"
    wrapper = [n for n in model.graph.node if n.name.startswith(IO_PREFIX)]
    assert {n.op_type for n in wrapper} <= IO_OPS
    assert {n.op_type for n in wrapper} >= {"Cast", "Transpose", "Round", "Clip", "Gather"}  # BGR: Gather
    rgb = onnx.load(str(uint8_models["rgb"]))
    assert "Gather" not in {n.op_type for n in rgb.graph.node}


def test_strip_recovers_the_float_graph(random_onnx_model, uint8_models):
    original = onnx.load(str(random_onnx_model))
    core = strip_uint8_io(onnx.load(str(uint8_models["bgr"])))
    assert core.graph.SerializeToString() == original.graph.SerializeToString()
    assert metadata_of(core) == metadata_of(original)
    with pytest.raises(ValueError, match="already"):
        wrap_uint8_io(onnx.load(str(uint8_models["bgr"])))


@pytest.mark.parametrize("order", ["bgr", "rgb"])
def test_parity_with_the_float_model_rounded(random_onnx_model, uint8_models, order):
    """Same float arithmetic in the graph as in numpy: measured max difference 0 uint8 levels."""
    assert check_uint8_parity(random_onnx_model, uint8_models[order]) == 0


@pytest.mark.parametrize("tile", [None, 40])
def test_deblurrer_feeds_uint8_windows_straight_through(random_onnx_model, uint8_models, tile):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (70, 92, 3), dtype=np.uint8)
    radius = rng.uniform(0, 7, (70, 92)).astype(np.float32)  # > 6 px: clipped (with a warning) in both
    with (
        Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=tile, threads=1, max_radius_px=6) as reference,
        Deblurrer(uint8_models["bgr"], backend="onnxruntime-cpu", tile=tile, threads=1, max_radius_px=6) as wrapped,
    ):
        assert wrapped.backend.io == "uint8" and wrapped.backend.io_channel_order == "bgr"
        for order in ("bgr", "rgb"):
            with pytest.warns(UserWarning, match="clipped"):
                expected = reference.deblur(image, radius, channel_order=order)
            with pytest.warns(UserWarning, match="clipped"):
                got = wrapped.deblur(image, radius, channel_order=order)
            assert got.dtype == np.uint8 and got.shape == image.shape
            assert np.array_equal(got, expected)
        # float32 images still work: converted to uint8 once, the result back to float32
        as_float = image.astype(np.float32) / 255
        small = np.clip(radius, 0, 6)
        got = wrapped.deblur(as_float, small)
        assert got.dtype == np.float32
        assert np.abs(got - reference.deblur(as_float, small)).max() <= 0.5 / 255 + 1e-6


def test_backend_refuses_float_inputs_for_a_uint8_model(uint8_models):
    with create_backend("onnxruntime-cpu", uint8_models["bgr"], threads=1) as backend:
        with pytest.raises(ValueError, match="uint8"):
            backend.run(np.zeros((1, 3, 8, 8), np.float32), np.zeros((1, 1, 8, 8), np.float32))


def _images(folder, count=6, size=(44, 60)):
    import cv2

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.full((*size, 3), rng.integers(0, 256, 3), dtype=np.uint8)
        image[10:20, 12:30] = rng.integers(0, 256, 3)
        cv2.imwrite(str(folder / f"photo{i:02d}.png"), image)
    return folder


def test_calibrate_keeps_the_io_kind(random_onnx_model, uint8_models, tmp_path):
    """FP16 and INT8 of a uint8-I/O model: the same wrapper around the converted core (head kept float32)."""
    settings = SetSettings("calibration", str(_images(tmp_path / "sharp")), split_seed=0, seed=3, size=16, halo=8)
    fp16 = calibrate(uint8_models["rgb"], tmp_path / "fp16.onnx", "fp16", progress=False)
    int8 = calibrate(
        uint8_models["rgb"],
        tmp_path / "int8.onnx",
        "int8",
        calibration=settings,
        samples=2,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert fp16["io"] == int8["io"] == "uint8" and int8["qdq_pairs"] == 148
    image = np.random.default_rng(2).integers(0, 256, (1, 32, 36, 3), dtype=np.uint8)
    radius = np.full((1, 32, 36), 2.0, np.float32)
    with create_backend("onnxruntime-cpu", uint8_models["rgb"], threads=1) as reference:
        expected = reference.run(image, radius).astype(int)
    for precision in ("fp16", "int8"):
        model = onnx.load(str(tmp_path / f"{precision}.onnx"))
        assert io_kind(model) == "uint8" and metadata_of(model)["svbr.channel_order"] == "RGB"
        check_precision_graph(model, precision)
        core = strip_uint8_io(model)
        add = next(n for n in core.graph.node if n.op_type == "Add" and "image" in n.input)  # float skip path
        assert next(n for n in core.graph.node if n.op_type == "Clip").input[0] == add.output[0]
        with create_backend("onnxruntime-cpu", tmp_path / f"{precision}.onnx", threads=1) as backend:
            got = backend.run(image, radius)
        assert got.dtype == np.uint8 and np.abs(got.astype(int) - expected).max() <= (1 if precision == "fp16" else 40)
    back = calibrate(uint8_models["rgb"], tmp_path / "f.onnx", "fp16", progress=False, io="float32")
    assert back["io"] == "float32" and io_kind(onnx.load(str(tmp_path / "f.onnx"))) == "float32"


def test_cli_exports_uint8_io(tmp_path, capsys):
    out = tmp_path / "u8.onnx"
    assert export_main(["--random-init", "0", "--out", str(out), "--io", "uint8"]) == 0
    assert "max |Δ| = 0 level(s)" in capsys.readouterr().out
    assert io_kind(onnx.load(str(out))) == "uint8" and not list(tmp_path.glob("*.unverified*"))


def test_validate_scores_a_uint8_io_model(random_svbrnet, random_onnx_model, uint8_models, tmp_path):
    """svbr validate feeds a uint8-I/O model uint8 windows and radii in px: only uint8 rounding differs."""
    import torch

    from calibration.dataset import build_set, iterate_set
    from calibration.validate import validate

    def reference(image, blur_map):
        with torch.inference_mode():
            return random_svbrnet(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()

    settings = SetSettings("validation", str(_images(tmp_path / "sharp", count=12)), size=32)
    samples = list(iterate_set(build_set(settings, 2, tmp_path / "cache", progress=False)))
    report = validate([random_onnx_model, uint8_models["bgr"]], reference, samples, progress=False)
    float_entry, uint8_entry = report["models"]
    assert float_entry["vs_pytorch"]["max_abs"] < 1e-4
    # scored against PyTorch's output rounded to uint8 (as Deblurrer delivers it): within one level
    assert uint8_entry["reference"] == "pytorch-fp32 rounded to uint8"
    assert uint8_entry["vs_pytorch"]["max_abs"] <= 1 / 255 + 1e-6
    assert uint8_entry["passed"] and uint8_entry["vs_pytorch"]["ssim_mean"] > 0.9999
