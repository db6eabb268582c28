"""SVBR-Net inference: ``Deblurrer`` over pluggable backends. Never imports torch.

    >>> from runtime import Deblurrer
    >>> sharp = Deblurrer().deblur(image_bgr_uint8, radius_map_px)
    >>> sharp, radius_map_px = Deblurrer().deblur(image_bgr_uint8, return_map=True)  # map estimated

The public names are loaded on first use (PEP 562), so ``import runtime.constants``
(which training does) stays free of onnxruntime and the backends.
"""

from __future__ import annotations

import importlib
from typing import Any

from runtime._version import __version__

_EXPORTS = {
    "Deblurrer": "runtime.deblurrer",
    "BUNDLED_MODEL_PATH": "runtime.deblurrer",
    "Backend": "runtime.backends",
    "BackendOptions": "runtime.backends.options",
    "create_backend": "runtime.backends",
    "available_backends": "runtime.backends",
    "estimate_blur_map": "runtime.estimate",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
