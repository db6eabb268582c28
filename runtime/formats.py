"""Camera frame formats around the 3-channel network: mono, 16-bit and BGRA/RGBA frames.

``Deblurrer.deblur`` natively takes H×W×3 uint8 or float32 in [0, 1]. Cameras
also deliver mono frames (H×W or H×W×1) and 16-bit frames (uint16, e.g. raw
machine-vision sensors or PNG/TIFF). :func:`deblur_camera_frame` converts such a
frame to H×W×3 float32 in [0, 1], runs the normal path and converts the result
back, so the caller gets the same shape and dtype it passed:

* mono: the grey plane is repeated into three channels; the colour output is
  reduced back to grey with ITU-R BT.601 weights (0.299 R + 0.587 G + 0.114 B);
* uint16: divided by 65535, returned as ``rint(x × 65535)`` uint16;
* 4 channels: the alpha channel is passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)


def is_camera_format(image: object) -> bool:
    """Whether ``image`` is an ndarray that needs :func:`deblur_camera_frame` (not plain H×W×3 uint8/float32)."""
    if not isinstance(image, np.ndarray):
        return False
    if image.ndim == 2:
        return True
    if image.ndim == 3 and image.shape[2] in (1, 4):
        return True
    return image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint16


def _to_float(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255)
    if image.dtype == np.uint16:
        return image.astype(np.float32) / np.float32(65535)
    return image  # float32, validated by the colour path


def _from_float(image: np.ndarray, dtype: np.dtype) -> np.ndarray:
    image = np.clip(image, 0.0, 1.0)
    if dtype == np.uint8:
        return np.rint(image * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.rint(image * 65535).astype(np.uint16)
    return image.astype(np.float32)


def deblur_camera_frame(
    deblur_colour: Callable[..., np.ndarray], image: np.ndarray, blur_map: object, channel_order: str, **kwargs: object
) -> np.ndarray:
    """Deblur a mono, 16-bit or 4-channel frame with ``deblur_colour`` (the H×W×3 path); same shape and dtype back.

    Raises:
        ValueError: an unsupported dtype or channel count (the colour path validates the rest).
    """
    if image.dtype not in _SUPPORTED_DTYPES:
        raise ValueError(f"image dtype must be uint8, uint16 or float32 (in [0, 1]), got {image.dtype}")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must have 1, 3 or 4 channels, got {image.shape[2]}: shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    mono = image.ndim == 2 or image.shape[2] == 1
    alpha = image[..., 3] if (image.ndim == 3 and image.shape[2] == 4) else None
    if mono:
        plane = _to_float(image.reshape(image.shape[0], image.shape[1]))
        colour = np.repeat(plane[..., None], 3, axis=2)
    else:
        colour = _to_float(np.ascontiguousarray(image[..., :3]))
    sharp = deblur_colour(
        np.ascontiguousarray(colour, dtype=np.float32), blur_map, channel_order=channel_order, **kwargs
    )
    if mono:
        b, g, r = (
            (sharp[..., 0], sharp[..., 1], sharp[..., 2])
            if channel_order == "bgr"
            else (sharp[..., 2], sharp[..., 1], sharp[..., 0])
        )
        grey = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b
        out = _from_float(grey, image.dtype)
        return out.reshape(image.shape)
    out = _from_float(sharp, image.dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha[..., None]], axis=2)
    return out
