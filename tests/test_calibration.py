"""`svbr calibrate`: the synthetic calibration set, FP16 and INT8 (QDQ) graphs, their contract checks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration.cli import calibrate, main
from calibration.dataset import SetSettings, build_set, iterate_set, read_window_sample, set_images
from calibration.graph import (
    WEIGHTED_OPS,
    check_int8_graph,
    check_io_contract,
    check_precision_graph,
    file_sha256,
    metadata_of,
)
from runtime.backends import create_backend
from runtime.backends.compare import compare_runners
from runtime.tiling import plan_tiles
from training.cache import find_images, split_by_image
from training.synthesis import MAP_FAMILIES

TILE, HALO = 16, 8  # tiny deployment tiles: windows of 32×32 px


def make_images(folder, count=10, size=(44, 60)):
    """Photos with hard-edged rectangles on a smooth ramp, so Canny (augmentation) finds edges."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    ramp = np.linspace(40, 200, size[1], dtype=np.float32)[None, :, None]
    for i in range(count):
        image = np.broadcast_to(ramp, (*size, 3)).astype(np.uint8).copy()
        for _ in range(5):
            y, x = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 12)
            image[y : y + 10, x : x + 12] = rng.integers(0, 256, 3)
        cv2.imwrite(str(folder / f"photo{i:02d}.png"), image)
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("sharp"))


@pytest.fixture(scope="module")
def calibration_settings(images):
    return SetSettings("calibration", str(images), split_seed=0, seed=3, size=TILE, halo=HALO)


@pytest.fixture(scope="module")
def models(random_onnx_model, calibration_settings, tmp_path_factory):
    """FP16 and INT8 (MinMax, 4 windows) models of the random-init export."""
    folder = tmp_path_factory.mktemp("precision")
    fp16 = calibrate(random_onnx_model, folder / "fp16.onnx", "fp16", progress=False)
    int8 = calibrate(
        random_onnx_model,
        folder / "int8.onnx",
        "int8",
        calibration=calibration_settings,
        samples=4,
        cache_dir=folder / "cache",
        progress=False,
    )
    return {"fp16": folder / "fp16.onnx", "int8": folder / "int8.onnx", "fp16_summary": fp16, "int8_summary": int8}


# --- calibration set ---------------------------------------------------------------------------


def test_sets_draw_only_validation_images_and_never_share_one(images):
    split = split_by_image(find_images(images), 0)
    calibration, validation = set_images(images, 0, "calibration"), set_images(images, 0, "validation")
    assert calibration and validation
    assert set(calibration) | set(validation) <= set(split["val"])
    assert not set(calibration) & set(validation)
    assert not (set(calibration) | set(validation)) & set(split["train"])


def test_calibration_windows_are_the_runtime_windows(calibration_settings, tmp_path):
    paths = build_set(calibration_settings, 26, tmp_path, progress=False)
    samples = list(iterate_set(paths))
    # 44×60 photos, tile 16, halo 8: every window is one of the tile plan's, 16 + 2·8 px square.
    plan = plan_tiles(44, 60, TILE, HALO)
    for sample in samples:
        assert sample.blurry.shape == (plan.window_height, plan.window_width, 3) and sample.blurry.dtype == np.uint8
        assert sample.radius_px.shape == (plan.window_height, plan.window_width)
        assert sample.sharp is None  # calibration needs no ground truth
        assert sample.radius_px.min() >= 0 and sample.radius_px.max() <= 6.0
    # 26 consecutive samples: all 13 families, each with a true and an estimated map.
    assert {s.family for s in samples} == set(MAP_FAMILIES)
    assert {s.map_kind for s in samples} == {"true", "matting", "domain_transform"}
    for family in MAP_FAMILIES:
        kinds = {s.map_kind for s in samples if s.family == family}
        assert "true" in kinds and kinds - {"true"}, family


def test_sets_are_deterministic_cached_and_extendable(calibration_settings, tmp_path):
    first = build_set(calibration_settings, 3, tmp_path / "a", progress=False)
    again = build_set(calibration_settings, 5, tmp_path / "b", progress=False)
    for a, b in zip(first, again):
        x, y = read_window_sample(a), read_window_sample(b)
        assert np.array_equal(x.blurry, y.blurry) and np.array_equal(x.radius_px, y.radius_px)
    stamps = [p.stat().st_mtime_ns for p in again]
    assert build_set(calibration_settings, 5, tmp_path / "b", progress=False) == again
    assert [p.stat().st_mtime_ns for p in again] == stamps, "cached samples must not be redrawn"
    other_seed = SetSettings(**{**calibration_settings.__dict__, "seed": 4})
    assert build_set(other_seed, 1, tmp_path / "b", progress=False)[0].parent != again[0].parent


def test_network_inputs_are_normalised_as_the_runtime_does(calibration_settings, tmp_path):
    sample = read_window_sample(build_set(calibration_settings, 1, tmp_path, progress=False)[0])
    image, blur_map = sample.network_inputs()
    assert image.dtype == blur_map.dtype == np.float32
    assert np.allclose(image[0].transpose(1, 2, 0), sample.blurry / 255.0, atol=1e-7)
    assert np.allclose(blur_map[0, 0], np.clip(sample.radius_px / 6.0, 0, 1), atol=1e-7)


def test_validation_samples_are_whole_images_with_ground_truth(images, tmp_path):
    settings = SetSettings("validation", str(images), size=32)
    sample = next(iterate_set(build_set(settings, 1, tmp_path, progress=False)))
    assert sample.blurry.shape == sample.sharp.shape == (32, 32, 3)
    with pytest.raises(ValueError, match="multiple of 4"):
        SetSettings("validation", str(images), size=30)
    with pytest.raises(ValueError, match="kind"):
        SetSettings("training", str(images))


# --- FP16 ----------------------------------------------------------------------------------------


def test_fp16_graph_is_valid_with_float32_io(models):
    model = onnx.load(str(models["fp16"]))
    casts = check_precision_graph(model, "fp16")  # checker, I/O contract, ops, float16 weights
    assert casts == 3  # image and blur_map in; the head's correction out to the float32 Add + Clip
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    clip = next(n for n in model.graph.node if n.op_type == "Clip")
    kinds = {init.data_type for init in model.graph.initializer if init.name not in clip.input}
    assert kinds == {onnx.TensorProto.FLOAT16}


def test_fp16_runs_on_onnxruntime_close_to_fp32(models, random_onnx_model):
    with (
        create_backend("onnxruntime-cpu", random_onnx_model) as fp32,
        create_backend("onnxruntime-cpu", models["fp16"]) as fp16,
    ):
        assert fp16.precision == "fp16"
        ((_, comparison),) = compare_runners(fp32, fp16, [(1, 48, 40)])
    assert comparison.max_abs < 5e-3, comparison


def test_fp16_keep_fp32_ops_of_the_sigmoid_head(random_onnx_model, tmp_path):
    from export.onnx_export import export_onnx
    from tests.conftest import make_random_svbrnet

    sigmoid_model = export_onnx(make_random_svbrnet(head="sigmoid"), tmp_path / "sigmoid.onnx")
    calibrate(sigmoid_model, tmp_path / "m.onnx", "fp16", keep_fp32=("Sigmoid",), progress=False)
    model = onnx.load(str(tmp_path / "m.onnx"))
    # One Cast into the Sigmoid; its float32 result is the output (the converter's trailing Cast is removed).
    assert check_precision_graph(model, "fp16") == 3
    sigmoid = next(n for n in model.graph.node if n.op_type == "Sigmoid")
    assert list(sigmoid.output) == ["sharp"]
    with pytest.raises(ValueError, match="neither op types nor node names"):
        calibrate(random_onnx_model, tmp_path / "x.onnx", "fp16", keep_fp32=("NoSuchOp",), progress=False)


# --- INT8 ----------------------------------------------------------------------------------------


def test_int8_has_a_qdq_pair_around_every_conv(models, random_onnx_model):
    model = onnx.load(str(models["int8"]))
    summary = check_precision_graph(model, "int8")
    source = onnx.load(str(random_onnx_model))
    weighted = [n for n in source.graph.node if n.op_type in WEIGHTED_OPS]
    assert summary.weighted_nodes == len(weighted) == 76
    assert summary.weight_pairs == 76  # one per-channel pair per weight
    assert summary.activation_pairs == 72  # T3's two branches share their input's pair (4 blocks)
    assert summary.qdq_pairs == 148
    assert models["int8_summary"]["qdq_pairs"] == 148
    for value in [*model.graph.input, *model.graph.output]:
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_int8_pairs_are_symmetric_and_per_output_channel(models):
    model = onnx.load(str(models["int8"]))
    producer = {out: node for node in model.graph.node for out in node.output}
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        activation_dq = producer[node.input[0]]
        assert activation_dq.op_type == "DequantizeLinear"
        assert producer[activation_dq.input[0]].op_type == "QuantizeLinear"
        assert constants[activation_dq.input[2]].dtype == np.int8 and constants[activation_dq.input[2]] == 0
        weight_dq = producer[node.input[1]]
        weight_q = producer[weight_dq.input[0]]
        weight = constants[weight_q.input[0]]
        axis = {a.name: a.i for a in weight_dq.attribute}["axis"]
        # Output channels: axis 0 of Conv's O×I×k×k, axis 1 of ConvTranspose's I×O×k×k.
        assert axis == (0 if node.op_type == "Conv" else 1)
        scale, zero_point = constants[weight_dq.input[1]], constants[weight_dq.input[2]]
        assert scale.shape == (weight.shape[axis],) and np.all(scale > 0)
        assert zero_point.dtype == np.int8 and not zero_point.any()
        assert node.input[2] in constants, "biases stay float constants"


def test_int8_check_rejects_an_unquantized_conv(models):
    model = onnx.load(str(models["int8"]))
    producer = {out: node for node in model.graph.node for out in node.output}
    conv = next(node for node in model.graph.node if node.op_type == "Conv")
    conv.input[0] = producer[producer[conv.input[0]].input[0]].input[0]  # bypass its QDQ pair
    with pytest.raises(ValueError, match="not read through DequantizeLinear"):
        check_int8_graph(model)


def test_int8_runs_on_onnxruntime(models, random_onnx_model):
    with (
        create_backend("onnxruntime-cpu", random_onnx_model) as fp32,
        create_backend("onnxruntime-cpu", models["int8"]) as int8,
    ):
        assert int8.precision == "int8"
        ((_, comparison),) = compare_runners(fp32, int8, [(2, 32, 36)])
    assert 0 < comparison.max_abs < 0.25, comparison  # quantized: close, not equal


def test_precision_metadata(models, random_onnx_model):
    for precision in ("fp16", "int8"):
        metadata = metadata_of(onnx.load(str(models[precision])))
        assert metadata["svbr.precision"] == precision
        assert metadata["svbr.precision_source_sha256"] == file_sha256(random_onnx_model)
        assert metadata["svbr.max_radius_px"] == "6" and metadata["svbr.halo_px"] == "84"
        json.loads(metadata["svbr.precision_recipe"])
    recipe = json.loads(metadata_of(onnx.load(str(models["int8"])))["svbr.precision_recipe"])
    assert recipe["samples"] == 4 and recipe["calibration_set"]["size"] == TILE


def test_io_contract_check_catches_a_float16_input(models):
    model = onnx.load(str(models["fp16"]))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    with pytest.raises(ValueError, match="must be float32"):
        check_io_contract(model)


# --- command line ----------------------------------------------------------------------------------


def test_cli_makes_both_precisions(random_onnx_model, images, tmp_path):
    assert main(["--precision", "fp16", "--onnx", str(random_onnx_model), "--out", str(tmp_path / "a.onnx")]) == 0
    assert (
        main(
            [
                "--precision",
                "int8",
                "--onnx",
                str(random_onnx_model),
                "--out",
                str(tmp_path / "b.onnx"),
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
    assert check_precision_graph(onnx.load(str(tmp_path / "b.onnx")), "int8").qdq_pairs == 148


def test_cli_clear_errors(random_onnx_model, models, tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "x.onnx")
    assert main(["--precision", "fp16", "--onnx", str(tmp_path / "missing.onnx"), "--out", out]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["--precision", "fp16", "--onnx", str(models["int8"]), "--out", out]) == 2
    assert "already int8" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--precision", "int4", "--onnx", str(random_onnx_model), "--out", out])
    assert exit_info.value.code == 2
    monkeypatch.delenv("SVBR_SHARP_IMAGES", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--precision", "int8", "--onnx", str(random_onnx_model), "--out", out])
    assert exit_info.value.code == 2
    assert "--images" in capsys.readouterr().err


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_residual_skip_path_stays_float32(models, precision):
    """The image reaches the head's Add unquantized and in float32: the correction is what is approximate."""
    model = onnx.load(str(models[precision]))
    add = next(n for n in model.graph.node if n.op_type == "Add" and "image" in n.input)
    clip = next(n for n in model.graph.node if n.op_type == "Clip")
    assert add.output[0] in clip.input
    assert clip.output[0] == "sharp"
