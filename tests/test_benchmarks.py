"""benchmarks.latency and benchmarks.quality end to end, in a tiny configuration (random network)."""

from __future__ import annotations

import csv
import json

import pytest

from benchmarks import latency, quality
from benchmarks._common import parse_resolution, parse_tile
from tests.test_cache import make_images

SIZES = ("64x48", "96x64")
TILES = (None, 64)
ROW_KEYS = {
    "backend",
    "precision",
    "size",
    "tile",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "fps",
    "mp_per_s",
    "peak_rss_mb",
    "speedup_vs_torch_eager",
    "gpu_memory_mb",
    "threads",
    "runs",
}


@pytest.fixture(scope="module")
def checkpoint(random_svbrnet, tmp_path_factory):
    """The conftest's random network as a training checkpoint (what PyTorch eager loads)."""
    from training.model import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "random.pt"
    save_checkpoint(path, random_svbrnet, {"step": 0})
    return path


@pytest.fixture(scope="module")
def latency_run(random_onnx_model, checkpoint, tmp_path_factory):
    """One tiny latency run: torch eager and ONNX Runtime, fp32, two sizes, full frame and tile 64."""
    out = tmp_path_factory.mktemp("latency")
    code = latency.main(
        [
            "--backends",
            "torch,onnxruntime,tensorrt",
            "--precisions",
            "fp32,fp16",
            "--sizes",
            ",".join(SIZES),
            "--tiles",
            "0,64",
            "--halo",
            "8",
            "--runs",
            "1",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--model-fp32",
            str(random_onnx_model),
            "--model-fp16",
            str(out / "missing_fp16.onnx"),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def test_latency_writes_every_file_with_one_row_per_configuration(latency_run):
    for name in ("latency.json", "latency.csv", "latency.md", "latency.png"):
        assert (latency_run / name).stat().st_size > 0, name
    report = json.loads((latency_run / "latency.json").read_text())
    rows = report["results"]
    expected = {(b, "fp32", s, t) for b in ("torch", "onnxruntime-cpu") for s in SIZES for t in TILES}
    configurations = [(r["backend"], r["precision"], r["size"], r["tile"]) for r in rows]
    assert len(configurations) == len(set(configurations)) and set(configurations) == expected
    for row in rows:
        assert ROW_KEYS <= set(row), ROW_KEYS - set(row)
        assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["fps"] == pytest.approx(1000 / row["p50_ms"], rel=1e-3)
        assert row["peak_rss_mb"] > 0 and row["gpu_memory_mb"] is None and row["runs"] == 1
        assert row["speedup_vs_torch_eager"] > 0
        if row["backend"] == "torch":
            assert row["speedup_vs_torch_eager"] == 1.0 and row["torch_threads"] == 1
        else:  # its own process, without torch: the RSS is the runtime's alone
            assert row["torch_threads"] is None and row["onnxruntime_intra_op_threads"] == 1
    assert report["baseline"] == "torch fp32"
    assert {"machine", "versions", "threads", "settings", "skipped"} <= set(report)
    assert report["machine"]["os_cpu_count"] >= 1 and report["versions"]["onnxruntime"]
    with (latency_run / "latency.csv").open() as stream:
        assert len(list(csv.DictReader(stream))) == len(rows)


def test_latency_lists_what_it_skipped_and_why(latency_run):
    report = json.loads((latency_run / "latency.json").read_text())
    reasons = {(s["backend"], s["precision"]): s["reason"] for s in report["skipped"]}
    assert reasons[("tensorrt", None)]  # not installed here: listed, not silently dropped
    assert "svbr calibrate --precision fp16" in reasons[("onnxruntime-cpu", "fp16")]
    assert "fp32 only" in reasons[("torch", "fp16")]
    markdown = (latency_run / "latency.md").read_text()
    assert "| onnxruntime-cpu | fp32 | 96x64 | full |" in markdown and "Skipped:" in markdown


def test_quality_joins_accuracy_with_latency(latency_run, random_onnx_model, checkpoint, tmp_path):
    make_images(tmp_path / "images", 5, size=(48, 52))
    from training.cache import SynthSettings, synthesize

    synthesize(tmp_path / "images", tmp_path / "cache", SynthSettings(48, 52, 0, 2), workers=1)
    code = quality.main(
        [
            "--cache",
            str(tmp_path / "cache"),
            "--limit",
            "0",
            "--tuning-samples",
            "2",
            "--threads",
            "1",
            "--precisions",
            "fp32,int8",
            "--model-fp32",
            str(random_onnx_model),
            "--model-int8",
            str(tmp_path / "missing_int8.onnx"),
            "--checkpoint",
            str(checkpoint),
            "--latency",
            str(latency_run / "latency.json"),
            "--latency-size",
            "96x64",
            "--out",
            str(tmp_path / "out"),
            "-q",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    rows = {(r["method"], r["precision"]): r for r in report["rows"]}
    assert set(rows) == {
        ("blurry input", None),
        ("classical (layered Wiener)", "fp64"),
        ("SVBR-Net, PyTorch eager", "fp32"),
        ("SVBR-Net, onnxruntime-cpu", "fp32"),
    }
    for row in rows.values():
        assert 0 < row["true_ssim"] <= 1 and row["augmented_psnr"] > 0
    onnx, eager = rows[("SVBR-Net, onnxruntime-cpu", "fp32")], rows[("SVBR-Net, PyTorch eager", "fp32")]
    assert onnx["true_psnr"] == pytest.approx(eager["true_psnr"], abs=0.05)  # same network, 8-bit outputs
    assert eager["speedup_vs_torch_eager"] == 1.0 and onnx["p50_ms"] > 0 and onnx["speedup_vs_torch_eager"] > 0
    assert rows[("classical (layered Wiener)", "fp64")]["p50_ms"] > 0  # timed by quality.py itself
    assert rows[("blurry input", None)]["p50_ms"] is None
    assert any("svbr calibrate --precision int8" in note for note in report["notes"])
    assert "| SVBR-Net, onnxruntime-cpu | fp32 |" in (tmp_path / "out" / "quality.md").read_text()


def test_parsers():
    assert parse_resolution("1280x720") == (1280, 720)
    assert parse_tile("0") is None and parse_tile("full") is None and parse_tile("512") == 512
    assert latency.expand_backends(["onnxruntime", "torch"]) == ["torch", "onnxruntime-cpu"]
    assert latency.parse_max_mp(["torch=2.1", "ort:fp16=1"]) == {"torch": 2.1, "onnxruntime-cpu:fp16": 1.0}
    assert latency.parse_sizes("64x48,96x64@0,96x64@64", [None, 32]) == [((64, 48), [None, 32]), ((96, 64), [None, 64])]
    assert latency.size_limit({"torch": 2.1, "torch:fp32": 1.0}, "torch", "fp32") == ("torch:fp32", 1.0)


def test_pyramid_benchmarks_run_and_write_their_reports(tmp_path, monkeypatch, random_onnx_model):
    """benchmarks/pyramid.py and benchmarks/large_blur.py end to end at tiny sizes (real numbers: their commands)."""
    from benchmarks import estimate as bench_estimate
    from benchmarks import large_blur, pyramid

    assert pyramid.main(["--sizes", "40x32", "--model", str(random_onnx_model), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "pyramid.json").read_text())["rows"]
    assert [row["levels"] for row in rows][:2] == [[0], [0, 1, 2, 3]]  # (40 px: the sawtooth has not risen yet)
    assert "sawtooth" in (tmp_path / "pyramid.md").read_text()
    make_images(tmp_path / "photos", 10, size=(60, 80))
    monkeypatch.setattr(bench_estimate, "PHOTO_HW", (64, 96))
    monkeypatch.setattr(large_blur, "CALIBRATION_RADII", (0, 8))
    code = large_blur.main(
        [
            "--images",
            str(tmp_path / "photos"),
            "--photos",
            "1",
            "--model",
            str(random_onnx_model),
            "--parts",
            "calibration,dense,quality",
            "--out",
            str(tmp_path / "lb"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "lb" / "large_blur.json").read_text())
    assert set(report["quality"]["rows"]) >= {"blurry", "true map, pyramid (max_radius_px 48)"}
    assert [row["radius"] for row in report["calibration"]["rows"]] == [0, 8]
    assert "## Deblurring" in (tmp_path / "lb" / "large_blur.md").read_text()


def test_jpeg_reapplication_removes_part_of_the_blocking_of_a_strongly_compressed_image():
    import numpy as np

    from benchmarks.jpeg_deblock import reapply_jpeg
    from training.degradations import jpeg

    rows, columns = np.mgrid[0:64, 0:80].astype(np.float32)
    smooth = np.stack([rows * 3, columns * 2 + 20, 128 + 60 * np.sin(rows / 9 + columns / 13)], axis=-1)
    original = np.clip(np.rint(smooth), 0, 255).astype(np.uint8)
    compressed = jpeg(original, 30)

    def error(image):
        return float(np.mean((image.astype(np.float64) - original) ** 2))

    deblocked = reapply_jpeg(compressed, 30, shift_step_px=2)
    assert deblocked.shape == original.shape and deblocked.dtype == np.uint8
    assert error(deblocked) < 0.9 * error(compressed)
    assert np.array_equal(deblocked, reapply_jpeg(compressed, 30, shift_step_px=2))  # deterministic
    with pytest.raises(ValueError, match="shift_step_px must divide 8"):
        reapply_jpeg(compressed, 30, shift_step_px=3)
