"""runtime.metrics against scikit-image, the independent oracle."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from runtime.metrics import psnr, ssim


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    reference = rng.random((48, 40, 3))
    noisy = np.clip(reference + rng.normal(0, 0.1, reference.shape), 0, 1)
    return reference, noisy


def test_ssim_matches_skimage(pair):
    reference, noisy = pair
    expected = structural_similarity(
        reference, noisy, data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(reference, noisy) == pytest.approx(expected, abs=1e-6)


def test_psnr_matches_skimage(pair):
    reference, noisy = pair
    assert psnr(reference, noisy) == pytest.approx(peak_signal_noise_ratio(reference, noisy, data_range=1.0))


def test_uint8_is_scaled(pair):
    reference, _ = pair
    as_uint8 = np.rint(reference * 255).astype(np.uint8)
    assert ssim(as_uint8, as_uint8) == pytest.approx(1.0)
    assert psnr(as_uint8, as_uint8) == float("inf")


def test_shape_mismatch_is_rejected(pair):
    with pytest.raises(ValueError, match="shape"):
        ssim(pair[0], pair[1][:-1])
