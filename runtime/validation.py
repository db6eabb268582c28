"""Input checks shared by ``Deblurrer.deblur`` and ``estimate_blur_map`` (numpy only)."""

from __future__ import annotations

import numpy as np

CHANNEL_ORDERS = ("bgr", "rgb")


def validate_image(image: np.ndarray, channel_order: str) -> None:
    """Raise ``ValueError`` naming the first problem with an image argument.

    Accepted: a numpy array H×W×3, uint8 or float32 in [0, 1], not empty, and
    ``channel_order`` ``"bgr"`` or ``"rgb"``.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3:
        raise ValueError(f"image must have 3 dimensions (H×W×3), got {image.ndim}: shape {image.shape}")
    if image.shape[2] != 3:
        raise ValueError(f"image must have 3 colour channels (H×W×3), got {image.shape[2]}: shape {image.shape}")
    if image.dtype not in (np.uint8, np.float32):
        raise ValueError(f"image dtype must be uint8 or float32 (in [0, 1]), got {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if image.dtype == np.float32:
        low, high = float(image.min()), float(image.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError("float32 image contains NaN or infinite values")
        if low < 0.0 or high > 1.0:
            raise ValueError(f"float32 image values must lie in [0, 1], got {low:.4g}..{high:.4g}")


def validate_strength(strength: object) -> float:
    """``strength`` as a float; ``ValueError`` naming it unless a finite number in [0, 2]."""
    if isinstance(strength, (bool, np.bool_)) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise ValueError(f"strength must be a number in [0, 2], got {strength!r}")
    value = float(strength)
    if not (np.isfinite(value) and 0.0 <= value <= 2.0):
        raise ValueError(f"strength must be a finite number in [0, 2], got {strength!r}")
    return value
