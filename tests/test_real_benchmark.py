"""benchmarks.real: the Pixel 4 real-photo benchmark's pure functions, and one run on the data when present."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks import real
from runtime.defocus import disk_kernel
from runtime.metrics import psnr, ssim

os.environ.setdefault("OMP_NUM_THREADS", "1")


def natural_image(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    """A 1/f-spectrum ("natural") random image in [0.05, 0.95], float64."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.fftfreq(width)[None]
    frequency = np.hypot(fy, fx)
    frequency[0, 0] = 1.0
    image = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(height, width))) / frequency))
    image = (image - image.min()) / (image.max() - image.min())
    return 0.05 + 0.9 * image


@pytest.mark.parametrize("shift", [(1.3, -0.7), (0.5, 0.25), (-2.25, 1.6)])
def test_registration_recovers_a_subpixel_shift(shift):
    reference = natural_image()
    moved = real.translate(reference, *shift)
    dx, dy, response = real.estimate_shift(moved, reference)
    assert abs(dx - shift[0]) < 0.06 and abs(dy - shift[1]) < 0.06, (dx, dy)
    assert response > 0.5
    aligned, info = real.register(moved, reference, max_shift_px=8)
    assert info["applied"] and (info["dx"], info["dy"]) == (dx, dy)
    residual = real.estimate_shift(aligned, reference)
    assert abs(residual[0]) < 0.06 and abs(residual[1]) < 0.06, residual


def test_registration_survives_disk_blur_and_rejects_long_shifts():
    reference = natural_image(seed=1)
    blurred = cv2.filter2D(real.translate(reference, 0.5, -0.75), -1, disk_kernel(3.0), borderType=cv2.BORDER_REFLECT)
    dx, dy, _ = real.estimate_shift(blurred, reference)
    assert abs(dx - 0.5) < 0.1 and abs(dy + 0.75) < 0.1, (dx, dy)
    far = real.translate(reference, 5.0, 0.0)
    unchanged, info = real.register(far, reference, max_shift_px=2.0)
    assert not info["applied"] and unchanged is far
    assert abs(info["dx"] - 5.0) < 0.1


def test_gain_matching_is_the_least_squares_scalar():
    target = natural_image()
    scaled, gain = real.gain_match(target / 2.3, target)
    assert gain == pytest.approx(2.3, rel=1e-9)
    np.testing.assert_allclose(scaled, target, atol=1e-12)
    rng = np.random.default_rng(0)
    noisy = target * 0.5 + rng.normal(0, 0.01, target.shape)
    _, gain = real.gain_match(noisy, target)
    gains = np.linspace(gain - 0.05, gain + 0.05, 11)
    errors = [np.sum((g * noisy - target) ** 2) for g in gains]
    assert int(np.argmin(errors)) == 5


def test_scores_are_grey_and_without_the_border():
    rng = np.random.default_rng(0)
    target = rng.integers(40, 200, (64, 80), dtype=np.uint8)
    test = target.copy()
    test[:8] = 0  # damage only inside the 8-px border
    test3 = np.repeat(test[..., None], 3, axis=2)
    value, structure = real.score(target, test3)
    assert value == float("inf") and structure == pytest.approx(1.0)
    test3[20, 30] = (0, 0, 255)  # one pixel inside: scored as the mean of its channels, 85
    value, structure = real.score(target, test3)
    inner = (slice(8, -8), slice(8, -8))
    expected = real.grey(test3)[inner]
    assert value == pytest.approx(psnr(target[inner] / 255.0, expected))
    assert structure == pytest.approx(ssim(target[inner] / 255.0, expected))
    assert real.score(target, test3, border=0)[0] < value


def test_fitted_map_recovers_a_uniform_radius():
    sharp = natural_image(80, 112, seed=2)
    for radius in (0.0, 1.5, 3.0):
        blurry = sharp if radius == 0 else cv2.filter2D(sharp, -1, disk_kernel(radius), borderType=cv2.BORDER_REFLECT)
        fitted = real.fit_radius_map(sharp, blurry, real.fit_levels(0.25), real.fit_window(0.25))
        assert fitted.dtype == np.float32 and fitted.shape == sharp.shape
        inner = fitted[10:-10, 10:-10]
        assert np.mean(inner == np.float32(radius)) > 0.95, (radius, np.unique(inner, return_counts=True))


def test_fit_levels_reach_past_the_trained_maximum():
    levels = real.fit_levels(0.25)
    assert levels[0] == 0 and levels[-1] == pytest.approx(12.0) and np.all(np.diff(levels) > 0)
    assert real.fit_levels(0.5)[-1] == pytest.approx(23.5) and real.fit_window(0.5) == 31


def test_prepare_aligns_a_synthetic_pair():
    rng = np.random.default_rng(3)
    sharp = cv2.resize(natural_image(63, 84, seed=3), (1344, 1008), interpolation=cv2.INTER_CUBIC) * 9000
    half = cv2.copyMakeBorder(sharp / 2.2, 252, 252, 336, 336, cv2.BORDER_REFLECT)
    left = np.clip(half + 1024 + rng.normal(0, 2, half.shape), 0, 65535).astype(np.uint16)
    data = real.prepare(left, left, sharp.astype(np.uint16), scale=0.25)
    assert data["blurry"].shape == (252, 336, 3) and data["blurry"].dtype == np.uint8
    assert data["target"].shape == (252, 336)
    assert data["gain"] == pytest.approx(1.1, rel=0.01)
    assert np.hypot(data["registration"]["dx"], data["registration"]["dy"]) < 0.1
    assert real.score(data["target"], data["blurry"])[0] > 40


def test_missing_data_exits_2_with_a_hint(tmp_path, capsys):
    assert real.main(["--data", str(tmp_path / "nothing"), "-q"]) == 2
    error = capsys.readouterr().err
    assert "--extract-from" in error and "dual_pixel_defocus_estimation_deblurring" in error
    with pytest.raises(real.DataMissing):
        real.score_pixel4(lambda image: image, data_dir=tmp_path)


def test_cli_registers_eval_real():
    import svbr_cli

    assert svbr_cli.COMMANDS["eval-real"][0] == "benchmarks.real"


@pytest.mark.skipif(
    not real.list_scenes(real.resolve_data_dir()),
    reason=f"no Pixel 4 data in {real.resolve_data_dir()} (python -m benchmarks.real --extract-from GITDIR)",
)
def test_benchmark_on_two_scenes(tmp_path, monkeypatch):
    monkeypatch.chdir(Path(real.__file__).resolve().parents[1])  # the repository root, as the docs run it
    assert real.main(["--limit", "2", "--output", str(tmp_path), "--grid", "2", "-q"]) == 0
    report = json.loads((tmp_path / "real.json").read_text())
    assert report["scene_count"] == 2 and report["rows"] == list(real.ROWS)
    assert len(report["model"]["sha256"]) == 64
    assert report["model"]["path"] == "runtime/models/svbrnet.onnx"  # no machine's absolute path
    for row in real.ROWS:
        assert 10 < report["mean"][row]["psnr"] < 50 and 0 < report["mean"][row]["ssim"] <= 1
    assert "| method | PSNR dB | SSIM |" in (tmp_path / "real.md").read_text()
    assert 0 < (tmp_path / "real.png").stat().st_size < real.GRID_MAX_BYTES
    # the plain function, with an identity "model": its row equals the blurry row
    scores = real.score_pixel4(lambda image: image, limit=1, layered=False)
    assert scores["rows"] == ["blurry", "deblur(photo)"]
    assert scores["mean"]["deblur(photo)"] == scores["mean"]["blurry"]


def test_map_gain_stretches_only_the_radii_above_the_trained_range():
    from benchmarks.real_map_gain import read_larger

    radius_px = np.array([[0.0, 3.0, 6.0], [7.0, 12.0, 30.0]], np.float32)
    stretched = read_larger(radius_px, 1.5)
    assert stretched.dtype == np.float32
    np.testing.assert_array_equal(stretched[0], radius_px[0])  # ≤ 6 px: the single-level estimate, untouched
    np.testing.assert_allclose(stretched[1], [7.5, 15.0, 42.0])  # 6 + 1.5 (r - 6)
    np.testing.assert_array_equal(read_larger(radius_px, 1.0), radius_px)


def test_map_gain_without_data_exits_2(tmp_path, capsys):
    from benchmarks import real_map_gain

    assert real_map_gain.main(["--data", str(tmp_path / "nothing"), "-o", str(tmp_path)]) == 2
    assert "eval-real" in capsys.readouterr().err


def test_eval_real_takes_the_deblur_options_and_names_them_in_its_report():
    args = real.parse_args(["--strength", "0.8", "--max-radius", "24"])
    assert (args.strength, args.max_radius) == (0.8, 24.0)
    assert real.parse_args([]).strength == 1.0  # the defaults of svbr deblur
    with pytest.raises(SystemExit):
        real.parse_args(["--strength", "2.5"])
    assert real.deblur_settings({"strength": 0.8, "max_radius_px": 24.0}) == ", strength 0.8, max_radius_px 24"
    assert real.deblur_settings({"strength": 1.0, "max_radius_px": 48.0}) == ""
    assert real.deblur_settings({}) == ""  # reports written before the options existed
