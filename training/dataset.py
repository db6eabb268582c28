"""PyTorch views of a `svbr synth` cache.

``PatchBatches`` makes training exactly resumable: batch ``step`` is a pure
function of (seed, step), so a resumed run draws the very batches the
uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.constants import SIZE_MULTIPLE
from runtime.deblurrer import image_to_network, map_to_network
from training.cache import Sample, list_samples, read_sample


def to_network_inputs(blurry_rgb: np.ndarray, radius_px: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 H×W×3 RGB + radii (px) H×W -> image 3×H×W in [0, 1], map 1×H×W in [0, 1] (SPEC §1).

    The normalisation is the runtime's own, so training sees exactly what deployment feeds.
    """
    image = image_to_network(blurry_rgb[None], channel_order="rgb")[0]
    return torch.from_numpy(image), torch.from_numpy(map_to_network(radius_px[None])[0])


def to_target(sharp_rgb: np.ndarray) -> torch.Tensor:
    """uint8 H×W×3 RGB -> 3×H×W in [0, 1]."""
    return torch.from_numpy(image_to_network(sharp_rgb[None], channel_order="rgb")[0])


class PatchBatches(Dataset):
    """Item ``step`` is the training batch of that step: (image N×3×P×P, map N×1×P×P, sharp N×3×P×P).

    Args:
        cache_dir: a `svbr synth` cache.
        patch_size: crop size in px (multiple of 4), or None for whole samples.
        batch_size: samples per batch.
        augmented_fraction: probability that a sample uses its augmented (estimated) map
            instead of the true one: 0 in stage 1, 0.5 in stage 2 (SPEC §3).
        seed: with the step, determines the batch.
        length: number of steps (items).

    Decoded samples stay cached in memory, so each worker reads a file once.
    """

    def __init__(self, cache_dir: Path, patch_size: int | None, batch_size: int,
                 augmented_fraction: float, seed: int, length: int, split: str = "train") -> None:
        if patch_size is not None and patch_size % SIZE_MULTIPLE:
            raise ValueError(f"patch_size must be a multiple of {SIZE_MULTIPLE}, got {patch_size}")
        self.files = list_samples(cache_dir, split)
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.augmented_fraction = augmented_fraction
        self.seed = seed
        self.length = length
        self._read = lru_cache(maxsize=None)(read_sample)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        images, maps, targets = [], [], []
        for file_index in rng.integers(0, len(self.files), self.batch_size):
            sample: Sample = self._read(self.files[file_index])
            radius = sample.augmented_map if rng.random() < self.augmented_fraction else sample.true_map
            blurry, sharp = sample.blurry, sample.sharp
            if self.patch_size is not None:
                top = int(rng.integers(0, blurry.shape[0] - self.patch_size + 1))
                left = int(rng.integers(0, blurry.shape[1] - self.patch_size + 1))
                window = (slice(top, top + self.patch_size), slice(left, left + self.patch_size))
                blurry, sharp, radius = blurry[window], sharp[window], radius[window]
            image, blur_map = to_network_inputs(blurry, radius)
            images.append(image)
            maps.append(blur_map)
            targets.append(to_target(sharp))
        return torch.stack(images), torch.stack(maps), torch.stack(targets)


class ValidationSamples(Dataset):
    """Whole validation samples, cropped to a multiple of 4: (image, map, sharp) with the chosen map kind."""

    def __init__(self, cache_dir: Path, map_kind: str = "true", limit: int | None = None,
                 split: str = "val") -> None:
        if map_kind not in ("true", "augmented"):
            raise ValueError(f"map_kind must be 'true' or 'augmented', got {map_kind!r}")
        files = list_samples(cache_dir, split)
        if limit is not None and limit < len(files):
            # An even spread over the split, the same every epoch.
            files = [files[i] for i in np.linspace(0, len(files) - 1, limit).round().astype(int)]
        self.files = files
        self.map_kind = map_kind

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sample = read_sample(self.files[index])
        height = sample.blurry.shape[0] // SIZE_MULTIPLE * SIZE_MULTIPLE
        width = sample.blurry.shape[1] // SIZE_MULTIPLE * SIZE_MULTIPLE
        radius = sample.true_map if self.map_kind == "true" else sample.augmented_map
        image, blur_map = to_network_inputs(sample.blurry[:height, :width], radius[:height, :width])
        return image, blur_map, to_target(sample.sharp[:height, :width])
