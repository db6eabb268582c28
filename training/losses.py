"""SSIM and the training loss in torch.

SSIM is Wang et al. 2004 with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01,
K2 = 0.03, data range 1, computed per colour channel over the window
positions that lie fully inside the image (exactly the interior that
scikit-image averages after cropping its 5-pixel border). The test suite pins
it to ``skimage.metrics.structural_similarity`` within 1e-3.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5


def gaussian_window(size: int = WINDOW_SIZE, sigma: float = WINDOW_SIGMA) -> Tensor:
    """Normalised 1-D Gaussian of ``size`` taps."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).float()


def ssim_per_image(prediction: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Mean SSIM over window positions and channels.

    Args:
        prediction, target: N×C×H×W, H and W >= 11, values in [0, data_range].

    Returns:
        N SSIM values.
    """
    channels = prediction.shape[1]
    g = gaussian_window().to(prediction.device, prediction.dtype)
    # Separable filter: a horizontal then a vertical 1-D pass, one group per channel.
    kernel_h = g.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    kernel_v = g.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)

    def local_mean(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kernel_h, groups=channels), kernel_v, groups=channels)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_p, mu_t = local_mean(prediction), local_mean(target)
    var_p = local_mean(prediction * prediction) - mu_p**2
    var_t = local_mean(target * target) - mu_t**2
    cov = local_mean(prediction * target) - mu_p * mu_t
    ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2))
    return ssim_map.mean(dim=(1, 2, 3))


def psnr_per_image(prediction: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB for data in [0, 1]; N values."""
    mse = (prediction - target).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-12)
    return -10.0 * torch.log10(mse)


def deblur_loss(prediction: Tensor, target: Tensor, l1_weight: float = 0.0) -> Tensor:
    """1 − mean per-channel SSIM, averaged over the batch, plus ``l1_weight`` × mean |error|.

    ``l1_weight = 0`` is the paper's loss. A pixel term keeps colour on short
    CPU schedules, where SSIM alone lets local mean intensity drift (SPEC §4).
    """
    # SSIM is computed in float32 at least, also under autocast: its variance terms cancel catastrophically in bf16.
    dtype = torch.promote_types(prediction.dtype, torch.float32)
    prediction, target = prediction.to(dtype), target.to(dtype)
    loss = 1.0 - ssim_per_image(prediction, target).mean()
    if l1_weight:
        loss = loss + l1_weight * (prediction - target).abs().mean()
    return loss
