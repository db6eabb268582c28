"""The one source of truth for the numbers that every part of svbr-net shares.

SPEC §1: the network sees radii normalised by ``MAX_RADIUS_PX`` and images in
[0, 1]; spatial sizes are multiples of ``SIZE_MULTIPLE``; a tile needs
``HALO_PX`` of context on every side to reproduce the full-frame result.
"""

from __future__ import annotations

import numpy as np

#: The 23 disk radii (px) the network was trained on: 0.5, 0.75, ..., 6.0.
RADIUS_LEVELS_PX: np.ndarray = np.round(np.arange(0.5, 6.0 + 1e-9, 0.25), 2).astype(np.float32)
RADIUS_LEVELS_PX.setflags(write=False)

#: Largest trained radius; the map input is ``radius_px / MAX_RADIUS_PX`` clipped to [0, 1].
MAX_RADIUS_PX: float = 6.0

#: Two 2x downsamplings: network H and W must be multiples of this.
SIZE_MULTIPLE: int = 4

#: Receptive field (px) of SVBR-Net, measured by a gradient test (tests/test_model.py).
RECEPTIVE_FIELD_PX: int = 168

#: Context each tile needs on every side so that tiled == full frame.
HALO_PX: int = RECEPTIVE_FIELD_PX // 2

#: Version of the network definition and I/O contract, stored in exported models.
MODEL_VERSION: str = "1.0"

#: Names of the network's graph inputs and output (ONNX, TensorRT).
INPUT_IMAGE_NAME: str = "image"
INPUT_MAP_NAME: str = "blur_map"
OUTPUT_NAME: str = "sharp"

#: Arithmetic of a deployable graph: "fp32" (``svbr export``), "fp16" and "int8" (``svbr calibrate``).
#: Stored as the ``svbr.precision`` metadata of every ONNX model and engine.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
