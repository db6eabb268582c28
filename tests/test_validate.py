"""`svbr validate`: scores, thresholds, report, command line; and the parity thresholds on the bundled model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from test_calibration import make_images

from calibration.cli import calibrate
from calibration.dataset import SetSettings, build_set, iterate_set
from calibration.validate import PSNR_CAP_DB, THRESHOLDS, judge, main, validate
from export.onnx_export import checkpoint_metadata, export_onnx
from training.model import PRETRAINED_PATH, SVBRNet, save_checkpoint

REPO = Path(__file__).resolve().parents[1]

#: The sharp photos of SPEC §3 (not part of the repository); $SVBR_SHARP_IMAGES overrides.
SHARP_IMAGES = Path(os.environ.get("SVBR_SHARP_IMAGES", REPO.parent / "shared" / "datasets" / "sharp-train"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def setup(random_svbrnet, tmp_path_factory):
    """A checkpoint of the random network, its FP32/FP16/INT8 ONNX models, tiny images."""
    root = tmp_path_factory.mktemp("validate")
    checkpoint = root / "random.pt"
    save_checkpoint(checkpoint, random_svbrnet, {"note": "random init"})
    fp32 = export_onnx(random_svbrnet, root / "fp32.onnx", metadata=checkpoint_metadata(checkpoint, {}))
    images = make_images(root / "images")
    calibrate(fp32, root / "fp16.onnx", "fp16", progress=False)
    calibrate(
        fp32,
        root / "int8.onnx",
        "int8",
        samples=3,
        cache_dir=root / "cache",
        progress=False,
        calibration=SetSettings("calibration", str(images), size=16, halo=8),
    )
    return {
        "root": root,
        "checkpoint": checkpoint,
        "images": images,
        "fp32": fp32,
        "fp16": root / "fp16.onnx",
        "int8": root / "int8.onnx",
    }


def torch_runner(model):
    def run(image, blur_map):
        with torch.inference_mode():
            return model(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()

    return run


def metrics(ssim_mean, psnr_loss_db):
    return {"vs_pytorch": {"ssim_mean": ssim_mean}, "vs_ground_truth": {"psnr_loss_db": psnr_loss_db}}


def test_thresholds_are_the_issues():
    assert THRESHOLDS["fp16"].min_mean_ssim == 0.999 and THRESHOLDS["fp16"].max_psnr_loss_db is None
    assert THRESHOLDS["int8"].min_mean_ssim == 0.98 and THRESHOLDS["int8"].max_psnr_loss_db == 0.5
    assert judge("fp16", metrics(0.9995, 3.0)) == []  # FP16 has no PSNR criterion
    assert judge("fp16", metrics(0.9985, 0.0)) == ["mean SSIM vs PyTorch 0.99850 < 0.999"]
    assert judge("int8", metrics(0.985, 0.4)) == []
    assert len(judge("int8", metrics(0.975, 0.6))) == 2
    assert judge("int8", metrics(float("nan"), 0.0)), "NaN never passes"
    assert judge("int4", metrics(1.0, 0.0))


def test_validate_scores_every_model(setup, random_svbrnet):
    samples = list(
        iterate_set(
            build_set(
                SetSettings("validation", str(setup["images"]), size=32), 3, setup["root"] / "cache", progress=False
            )
        )
    )
    report = validate(
        [setup["fp32"], setup["fp16"], setup["int8"]], torch_runner(random_svbrnet), samples, progress=False
    )
    assert report["samples"] == 3 and report["sample_size"] == [32, 32]
    assert set(report["reference"]) >= {"psnr_mean_db", "ssim_mean"}
    by_precision = {entry["precision"]: entry for entry in report["models"]}
    assert list(by_precision) == ["fp32", "fp16", "int8"]
    for precision, entry in by_precision.items():
        vs_ref = entry["vs_pytorch"]
        assert -1 <= vs_ref["ssim_min"] <= vs_ref["ssim_mean"] <= 1
        assert vs_ref["psnr_min_db"] <= vs_ref["psnr_mean_db"] <= PSNR_CAP_DB
        assert len(entry["per_sample"]) == 3
        assert entry["failures"] == judge(precision, entry) and entry["passed"] == (not entry["failures"])
    # FP32 and FP16 parity hold for any weights; INT8 on random weights is only scored (mechanics).
    assert by_precision["fp32"]["passed"] and by_precision["fp32"]["vs_pytorch"]["ssim_min"] > 0.9999
    assert by_precision["fp16"]["passed"]
    assert by_precision["int8"]["vs_pytorch"]["max_abs"] > 0
    assert report["passed"] == all(entry["passed"] for entry in report["models"])
    json.dumps(report, allow_nan=False)  # valid JSON: no inf/NaN


def test_cli_writes_the_report(setup, tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        [
            "--models",
            f"{setup['fp32']},{setup['fp16']}",
            "--checkpoint",
            str(setup["checkpoint"]),
            "--images",
            str(setup["images"]),
            "--samples",
            "2",
            "--size",
            "32",
            "--cache",
            str(setup["root"] / "cache"),
            "--json",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "fp16.onnx" in table and "PyTorch (reference)" in table and "pass" in table
    report = json.loads(out.read_text())
    assert report["passed"] and report["settings"]["samples"] == 2
    assert [entry["backend"] for entry in report["models"]] == ["onnxruntime-cpu"] * 2


def test_cli_refuses_models_of_another_checkpoint(setup, tmp_path, capsys):
    other = tmp_path / "other.pt"
    save_checkpoint(other, SVBRNet(), {})
    code = main(
        [
            "--models",
            str(setup["fp16"]),
            "--checkpoint",
            str(other),
            "--images",
            str(setup["images"]),
            "--samples",
            "1",
            "--size",
            "32",
            "--cache",
            str(setup["root"] / "cache"),
            "-q",
        ]
    )
    assert code == 2
    assert "exported from another checkpoint" in capsys.readouterr().err


def test_cli_missing_files(setup, tmp_path, capsys):
    code = main(
        [
            "--models",
            str(tmp_path / "nope.onnx"),
            "--checkpoint",
            str(setup["checkpoint"]),
            "--images",
            str(setup["images"]),
            "-q",
        ]
    )
    assert code == 2 and "not found" in capsys.readouterr().err


@pytest.mark.skipif(not PRETRAINED_PATH.is_file(), reason=f"bundled weights not trained yet ({PRETRAINED_PATH})")
@pytest.mark.skipif(
    not SHARP_IMAGES.is_dir(), reason=f"sharp images not found at {SHARP_IMAGES} (set SVBR_SHARP_IMAGES)"
)
def test_bundled_model_meets_the_parity_thresholds(tmp_path, capsys):
    """The done-criterion: FP16 and INT8 of the bundled weights pass `svbr validate`.

    The recipe is the README's (default method and mixed INT8/FP16 search), shrunk to stay near a
    minute: 8 calibration windows of 128-px tiles from photos capped at 256 px (4 of them score the
    layers), and 8 validation samples of 128 px.
    """
    from training.model import load_model

    model, training_metadata = load_model(PRETRAINED_PATH)
    fp32 = export_onnx(
        model, tmp_path / "svbrnet.onnx", metadata=checkpoint_metadata(PRETRAINED_PATH, training_metadata)
    )
    calibrate(fp32, tmp_path / "svbrnet_fp16.onnx", "fp16", progress=False)
    # keep_fp16="auto": `svbr calibrate --precision int8`'s default for TensorRT (all-INT8 fails on these weights).
    calibrate(
        fp32,
        tmp_path / "svbrnet_int8.onnx",
        "int8",
        samples=8,
        cache_dir=tmp_path / "cache",
        progress=False,
        calibration=SetSettings("calibration", str(SHARP_IMAGES.resolve()), size=128, max_image_side=256),
        keep_fp16="auto",
        eval_samples=4,
    )
    models = ",".join(str(tmp_path / name) for name in ("svbrnet.onnx", "svbrnet_fp16.onnx", "svbrnet_int8.onnx"))
    code = main(
        [
            "--models",
            models,
            "--checkpoint",
            str(PRETRAINED_PATH),
            "--images",
            str(SHARP_IMAGES),
            "--samples",
            "8",
            "--size",
            "128",
            "--cache",
            str(tmp_path / "cache"),
            "--json",
            str(tmp_path / "parity.json"),
            "-q",
        ]
    )
    table = capsys.readouterr().out
    assert code == 0, table
