"""Network tensors from uint8 images and radius maps, normalised exactly as the runtime normalises them.

Training batches (``training.photos``), validation and ``svbr eval`` all go
through these two functions.
"""

from __future__ import annotations

import numpy as np
import torch

from runtime.deblurrer import image_to_network, map_to_network


def to_network_inputs(blurry_rgb: np.ndarray, radius_px: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 H×W×3 RGB + radii (px) H×W -> image 3×H×W in [0, 1], map 1×H×W in [0, 1] (SPEC §1).

    The normalisation is the runtime's own, so training sees exactly what deployment feeds.
    """
    image = image_to_network(blurry_rgb[None], channel_order="rgb")[0]
    return torch.from_numpy(image), torch.from_numpy(map_to_network(radius_px[None])[0])


def to_target(sharp_rgb: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 RGB -> 3×H×W in [0, 1]."""
    return torch.from_numpy(image_to_network(sharp_rgb[None], channel_order="rgb")[0])
