"""Torch SSIM against scikit-image (the independent oracle) and the loss's basic behaviour."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from training.losses import deblur_loss, psnr_per_image, ssim_per_image


@pytest.mark.parametrize("noise", [0.02, 0.1, 0.3])
def test_ssim_agrees_with_skimage(noise):
    rng = np.random.default_rng(0)
    target = rng.random((40, 36, 3))
    target = (target + np.roll(target, 1, 0) + np.roll(target, 1, 1)) / 3  # some structure
    prediction = np.clip(target + rng.normal(0, noise, target.shape), 0, 1)
    expected = structural_similarity(
        target,
        prediction,
        data_range=1.0,
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    ours = float(ssim_per_image(as_tensor(prediction), as_tensor(target))[0])
    assert ours == pytest.approx(expected, abs=1e-3)


def test_loss_is_zero_for_identical_images_and_grows_with_error():
    target = torch.rand(2, 3, 32, 32)
    assert float(deblur_loss(target, target, l1_weight=1.0)) == pytest.approx(0.0, abs=1e-5)
    worse = deblur_loss((target + 0.2).clamp(0, 1), target, l1_weight=1.0)
    assert float(worse) > 0.05


def test_psnr():
    target = torch.zeros(1, 3, 8, 8)
    assert float(psnr_per_image(target + 0.1, target)[0]) == pytest.approx(20.0, abs=1e-4)
