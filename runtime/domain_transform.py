"""Edge-aware recursive filtering by the domain transform (Gastal & Oliveira 2011).

The one implementation of the domain-transform recursive filter (RF) in the
package: the runtime's blur-map estimator (``runtime.estimate``) uses it to
smooth its guide and to propagate edge measurements, and the training side's
estimated-map augmentation (``training.augment``) imports it from here.

numpy only; never imports torch or the training side.
"""

from __future__ import annotations

import numpy as np

__all__ = ["domain_transform_derivatives", "normalized_convolution", "recursive_filter"]


def domain_transform_derivatives(guide: np.ndarray, sigma_s: float, sigma_r: float) -> tuple[np.ndarray, np.ndarray]:
    """Derivatives of the domain transform, 1 + σs/σr · Σ_c |∂I_c|.

    The guide is taken in [0, 1], the convention of Gastal & Oliveira (their
    σr values are in those units). With σs = min(H, W)/8 ≈ 42 px at 360×340
    and σr = 3.75, a black-to-white step (Σ_c |ΔI| = 3) costs ≈ 35 px of
    domain distance: the filter slows down at strong edges but carries edge
    samples smoothly across object interiors. Read on a 0..255 scale, σr =
    3.75 would make a 10-grey-level step cost ≈ 340 px: nearly every texture
    edge stops the filter, and the separable passes leave horizontal and
    vertical streaks in the map. (On 5 COCO photos × 3 map families that
    variant scored MAE 0.16 px against 0.23 px for [0, 1]; both are plausible
    estimators, the [0, 1] one is the conventional reading and artefact-free.)

    Args:
        guide: float (H, W, C), the guide image in [0, 1].
        sigma_s: spatial sigma in pixels.
        sigma_r: range sigma in guide units.

    Returns:
        (dx, dy): float64 (H, W) each. dx[:, j] is the domain distance between
        columns j-1 and j (dx[:, 0] unused); dy[i, :] between rows i-1 and i.
    """
    ratio = sigma_s / sigma_r
    dx = np.ones(guide.shape[:2])
    dy = np.ones(guide.shape[:2])
    dx[:, 1:] += ratio * np.abs(np.diff(guide, axis=1)).sum(axis=2)
    dy[1:, :] += ratio * np.abs(np.diff(guide, axis=0)).sum(axis=2)
    return dx, dy


def recursive_filter(
    signal: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, iterations: int
) -> np.ndarray:
    """Edge-aware recursive filter (RF) of Gastal & Oliveira 2011.

    Each iteration i = 1..N runs a horizontal then a vertical two-sided
    first-order recursion with σ_H,i = σs·√3·2^(N−i)/√(4^N − 1), feedback
    a = exp(−√2/σ_H,i) raised to the domain distance between neighbours.

    Args:
        signal: float (H, W) or (H, W, K), the signal(s) to filter.
        guide: float (H, W, C), the guide image in [0, 1].
        sigma_s: spatial sigma in pixels, > 0.
        sigma_r: range sigma in guide units, > 0.
        iterations: N >= 1.

    Returns:
        float64 array of the shape of ``signal``, the filtered signal.
    """
    if not (sigma_s > 0 and sigma_r > 0 and iterations >= 1):
        raise ValueError(f"need sigma_s > 0, sigma_r > 0, iterations >= 1; got {sigma_s}, {sigma_r}, {iterations}")
    squeeze = signal.ndim == 2
    out = np.array(signal[..., None] if squeeze else signal, dtype=np.float64)
    dx, dy = domain_transform_derivatives(guide, sigma_s, sigma_r)
    dx_t = np.ascontiguousarray(dx.T)
    for i in range(1, iterations + 1):
        sigma_h = sigma_s * np.sqrt(3.0) * 2.0 ** (iterations - i) / np.sqrt(4.0**iterations - 1.0)
        a = np.exp(-np.sqrt(2.0) / sigma_h)
        # Horizontal pass on the transposed (W, H, K) copy, so the recursion walks contiguous rows.
        out = _recursive_pass(np.ascontiguousarray(out.transpose(1, 0, 2)), a**dx_t).transpose(1, 0, 2)
        out = _recursive_pass(np.ascontiguousarray(out), a**dy)
    return out[..., 0] if squeeze else out


def _recursive_pass(signal: np.ndarray, feedback: np.ndarray) -> np.ndarray:
    """One forward then backward first-order recursion along axis 0, in place.

    Args:
        signal: float64 (N, M, K), C-contiguous; modified and returned.
        feedback: float64 (N, M); feedback[j] = a^d couples rows j-1 and j.

    Returns:
        ``signal``, filtered.
    """
    v = feedback[..., None]
    for j in range(1, signal.shape[0]):
        signal[j] += v[j] * (signal[j - 1] - signal[j])
    for j in range(signal.shape[0] - 2, -1, -1):
        signal[j] += v[j + 1] * (signal[j + 1] - signal[j])
    return signal


def normalized_convolution(
    values: np.ndarray, weights: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware normalised convolution RF(values·weights) / RF(weights).

    Args:
        values: float (H, W), the samples (anything where ``weights`` is 0).
        weights: float (H, W), >= 0, the confidence of each sample (a 0/1 mask, or fractions).
        guide: float (H, W, C) in [0, 1].
        sigma_s, sigma_r, iterations: as :func:`recursive_filter`.

    Returns:
        (propagated float64 (H, W), filtered weight float64 (H, W)). Where the
        filtered weight underflows (no sample reaches the pixel) the
        propagated value is NaN; the caller decides the fallback.
    """
    weights = np.asarray(weights, dtype=np.float64)
    stacked = np.stack([np.where(weights > 0, values, 0.0) * weights, weights], axis=-1)
    filtered = recursive_filter(stacked, guide, sigma_s, sigma_r, iterations)
    numerator, denominator = filtered[..., 0], filtered[..., 1]
    result = np.full(weights.shape, np.nan)
    np.divide(numerator, denominator, out=result, where=denominator > 1e-200)
    return result, denominator
