"""`svbr eval` end to end on a tiny cache and a random network."""

import json

import numpy as np
import torch

from tests.test_cache import make_images
from training.evaluate import colour_shift, main
from training.model import SVBRNet, save_checkpoint


def test_colour_shift_measures_channel_mean_drift():
    image = np.full((4, 4, 3), 100, np.uint8)
    shifted = image.copy()
    shifted[..., 0] += 6
    assert colour_shift(image, shifted) == 2.0


def test_eval_writes_a_table(tmp_path):
    make_images(tmp_path / "images", 5, size=(48, 52))
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "model.pt", SVBRNet().eval(), {"step": 0})
    code = main(
        [
            "--images",
            str(tmp_path / "images"),
            "--cache",
            str(tmp_path / "cache"),
            "--size",
            "50x44",
            "--model",
            str(tmp_path / "model.pt"),
            "-o",
            str(tmp_path / "report"),
            "--workers",
            "1",
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "report" / "eval.json").read_text())
    assert report["samples"] == 1  # one validation image x one map (the baseline tunes on training photos)
    assert set(report["methods"]) == {"blurry input", "classical (layered Wiener)", "SVBR-Net"}
    for metrics in report["methods"].values():
        assert 0 < metrics["true_ssim"] <= 1 and metrics["augmented_psnr"] > 0
        assert 0 < metrics["estimated_ssim"] <= 1 and metrics["estimated_psnr"] > 0  # map estimated by the runtime
    markdown = (tmp_path / "report" / "eval.md").read_text()
    assert "| SVBR-Net |" in markdown and "Gaussian noise σ = 5 levels" in markdown and "JPEG quality 80" in markdown
    blurry = report["methods"]["blurry input"]
    # Noise lowers the input's own score, more at σ = 5 than at σ = 2.
    assert blurry["true_psnr"] > blurry["noise2_psnr"] > blurry["noise5_psnr"]
    assert 0 < blurry["jpeg80_ssim"] <= 1
