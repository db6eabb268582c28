"""ONNX export: graph contract, BatchNorm folding, metadata and ONNX Runtime vs PyTorch parity."""

from __future__ import annotations

import hashlib
import json

import onnx
import pytest
import torch

from export import onnx_export
from export.onnx_export import (
    ALLOWED_OPS,
    PARITY_TOLERANCE,
    check_graph,
    check_parity,
    export_onnx,
    fold_batchnorm,
)
from runtime.constants import HALO_PX, MAX_RADIUS_PX, MODEL_VERSION, RECEPTIVE_FIELD_PX
from training.model import save_checkpoint

PARITY_SHAPES = [(1, 64, 64), (2, 36, 44), (1, 52, 76), (3, 20, 28)]


def metadata_of(path) -> dict[str, str]:
    return {entry.key: entry.value for entry in onnx.load(str(path)).metadata_props}


def test_graph_is_clean_with_dynamic_sizes(random_onnx_model):
    model = onnx.load(str(random_onnx_model))
    check_graph(model, opset=17)  # checker, I/O names, N×C×H×W with dynamic N, H, W
    ops = {node.op_type for node in model.graph.node}
    assert "BatchNormalization" not in ops
    assert ops <= ALLOWED_OPS
    assert ops >= {"Conv", "ConvTranspose", "AveragePool", "Concat", "Add", "Clip"}  # the residual head
    assert "Sigmoid" not in ops and "Constant" not in ops  # the Clip bounds are initializers


def test_sigmoid_head_exports_and_matches_pytorch(tmp_path):
    from tests.conftest import make_random_svbrnet

    model = make_random_svbrnet(head="sigmoid")
    path = export_onnx(model, tmp_path / "sigmoid.onnx")
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "Sigmoid" in ops and "Clip" not in ops
    assert metadata_of(path)["svbr.head"] == "sigmoid"
    for _, comparison in check_parity(model, path, [(1, 32, 36)]):
        assert comparison.max_abs < PARITY_TOLERANCE


def test_metadata_carries_the_contract(random_onnx_model):
    metadata = metadata_of(random_onnx_model)
    assert metadata["svbr.model_version"] == MODEL_VERSION
    assert float(metadata["svbr.max_radius_px"]) == MAX_RADIUS_PX
    assert int(metadata["svbr.receptive_field_px"]) == RECEPTIVE_FIELD_PX
    assert int(metadata["svbr.halo_px"]) == HALO_PX
    assert metadata["svbr.size_multiple"] == "4"
    assert metadata["svbr.channel_order"] == "RGB"
    assert metadata["svbr.input_image_range"] == "[0, 1]"
    assert metadata["svbr.precision"] == "fp32"
    assert metadata["svbr.head"] == "residual"


def test_fold_batchnorm_keeps_the_function(random_svbrnet):
    folded = fold_batchnorm(random_svbrnet)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in random_svbrnet.modules()), "input untouched"
    image, blur_map = torch.rand(1, 3, 32, 40), torch.rand(1, 1, 32, 40)
    with torch.no_grad():
        difference = (random_svbrnet(image, blur_map) - folded(image, blur_map)).abs().max()
    assert float(difference) < 1e-5


def test_outputs_are_spread_so_parity_is_meaningful(random_svbrnet):
    with torch.no_grad():
        out = random_svbrnet(torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32))
    assert float(out.std()) > 0.05


def test_parity_onnxruntime_vs_pytorch(random_svbrnet, random_onnx_model):
    results = check_parity(random_svbrnet, random_onnx_model, PARITY_SHAPES)
    assert [shape for shape, _ in results] == PARITY_SHAPES
    for shape, comparison in results:
        assert comparison.max_abs <= PARITY_TOLERANCE, (shape, str(comparison))


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_contract(random_svbrnet, tmp_path):
    path = export_onnx(random_svbrnet, tmp_path / "dynamo.onnx", exporter="dynamo")
    check_graph(onnx.load(str(path)), opset=17)
    for shape, comparison in check_parity(random_svbrnet, path, [(2, 36, 44), (1, 32, 52)]):
        assert comparison.max_abs <= PARITY_TOLERANCE, (shape, str(comparison))


def test_cli_exports_a_checkpoint_with_provenance(random_svbrnet, tmp_path, capsys):
    checkpoint = tmp_path / "run.pt"
    save_checkpoint(checkpoint, random_svbrnet, {"steps": 7})
    out = tmp_path / "model.onnx"
    assert onnx_export.main(["--checkpoint", str(checkpoint), "--out", str(out), "--opset", "13"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("parity") == len(onnx_export.PARITY_SHAPES)
    check_graph(onnx.load(str(out)), opset=13)
    metadata = metadata_of(out)
    assert metadata["svbr.source_checkpoint_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert json.loads(metadata["svbr.training_metadata"]) == {"steps": 7, "head": "residual"}
    assert metadata["svbr.head"] == "residual"


def test_cli_defaults_to_the_bundled_weights(random_svbrnet, tmp_path, monkeypatch):
    import runtime.deblurrer
    import training.model

    weights = tmp_path / "svbrnet_cpu.pt"
    save_checkpoint(weights, random_svbrnet, {})
    monkeypatch.setattr(training.model, "PRETRAINED_PATH", weights)
    bundled = tmp_path / "runtime_models" / "svbrnet.onnx"
    monkeypatch.setattr(runtime.deblurrer, "BUNDLED_MODEL_PATH", bundled)
    assert onnx_export.main(["--bundled", "--skip-parity"]) == 0
    assert metadata_of(bundled)["svbr.source_checkpoint"] == "svbrnet_cpu.pt"


def test_cli_reports_missing_weights(tmp_path, monkeypatch, capsys):
    import training.model

    monkeypatch.setattr(training.model, "PRETRAINED_PATH", tmp_path / "absent.pt")
    assert onnx_export.main(["--out", str(tmp_path / "m.onnx")]) == 2
    assert "bundled weights not found" in capsys.readouterr().err
    assert onnx_export.main(["--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "m.onnx")]) == 2
    assert not (tmp_path / "m.onnx").exists()


def test_check_graph_rejects_batchnorm():
    node = onnx.helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"])
    graph = onnx.helper.make_graph(
        [node],
        "bn",
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in "xsbmv"],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    with pytest.raises(ValueError, match="BatchNormalization"):
        check_graph(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]))
