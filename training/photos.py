"""Training batches blurred on the fly from the sharp photos: no cache to build, no stalled step.

A batch is a pure function of (seed, step): which photo, which blur-map family
and draw, where the crop sits and whether it gets an estimated map all come
from ``numpy.random.default_rng([seed, step])``. A resumed run, on this machine
or a brand-new one, therefore draws exactly the batches the uninterrupted run
would have drawn, with no sampler state to save.

Each crop is blurred through a window ``BLUR_MARGIN_PX`` wider on every side
(the largest disk's half-width) and then trimmed, which equals blurring the
whole 360×340 sample and cropping (tested): the blur of a pixel only reads
pixels within that half-width, and beyond the sample's border the window
repeats the border pixels, as ``BORDER_REPLICATE`` does on the whole sample.

Estimated maps (stage 2) are propagated from the edges of the blurry window
itself, half by closed-form matting and half by the domain transform (SPEC §3),
with the domain transform's spatial scale of the whole sample.

Two pipelines (``PIPELINES``) turn a sharp crop into a blurry one: ``paper``,
the exact disk PSF on sRGB values (SPEC §3), and ``camera``, the
camera-realistic chain of ``training.degradations`` (linear light, several
aperture shapes, occlusion layers, highlights, sensor noise, JPEG). Under
``camera`` a third of the estimated maps are the runtime's own
``estimate_blur_map`` of the degraded crop: the maps users actually get.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from runtime.constants import RADIUS_LEVELS_PX, SIZE_MULTIPLE
from runtime.defocus import blur, disk_kernel
from training.augment import DT_SIGMA_S_DIVISOR, propagate, runtime_estimate
from training.cache import AUGMENT_METHODS, SynthSettings, find_images, load_sharp_rgb, split_by_image
from training.dataset import to_network_inputs, to_target
from training.degradations import (
    CAMERA_MARGIN_PX,
    CAMERA_RANGES,
    CameraPlan,
    CameraRanges,
    add_srgb_noise,
    degrade,
    draw_camera,
    jpeg,
)
from training.synthesis import MAP_FAMILIES, draw_map

#: Half-width (px) of the largest disk PSF: how far the blur of a pixel reaches.
BLUR_MARGIN_PX: int = disk_kernel(float(RADIUS_LEVELS_PX[-1])).shape[0] // 2

#: How a sharp crop becomes a blurry one: the paper's disk blur on sRGB, or the camera-realistic chain.
PIPELINES: tuple[str, ...] = ("paper", "camera")

#: Estimated-map methods of the camera pipeline: the two propagation schemes and the runtime's estimator.
CAMERA_AUGMENT_METHODS: tuple[str, ...] = (*AUGMENT_METHODS, "runtime")

#: Fixed degradations of the delivered (blurry, uint8) validation images, by name: the issue's
#: robustness measurements (Gaussian noise of σ 8-bit levels, JPEG of a quality).
VALIDATION_DEGRADATIONS: dict[str, tuple[str, float]] = {
    "noise2": ("noise", 2.0),
    "noise5": ("noise", 5.0),
    "jpeg80": ("jpeg", 80),
}


def degrade_delivered(blurry_rgb: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    """One of ``VALIDATION_DEGRADATIONS`` applied to a delivered uint8 RGB image."""
    if name not in VALIDATION_DEGRADATIONS:
        raise ValueError(f"unknown validation degradation {name!r}; known: {', '.join(VALIDATION_DEGRADATIONS)}")
    kind, amount = VALIDATION_DEGRADATIONS[name]
    if kind == "noise":
        return add_srgb_noise(blurry_rgb, amount, gray=False, rng=rng)
    return jpeg(blurry_rgb, int(amount))


def window_indices(size: int, start: int, length: int, margin: int) -> np.ndarray:
    """Rows (or columns) ``start − margin … start + length + margin − 1``, replicated at the borders."""
    return np.clip(np.arange(start - margin, start + length + margin), 0, size - 1)


def blur_window(
    sharp_rgb: np.ndarray, radius_px: np.ndarray, top: int, left: int, height: int, width: int
) -> np.ndarray:
    """``blur(sharp_rgb, radius_px)[top:top+height, left:left+width]``, computed on the window only.

    Args:
        sharp_rgb: uint8 H×W×3, the whole sharp sample.
        radius_px: float H×W radii in px for the whole sample.
        top, left, height, width: the window, inside the sample.

    Returns:
        uint8 height×width×3, identical to blurring the whole sample and cropping.
    """
    m = BLUR_MARGIN_PX
    rows = window_indices(sharp_rgb.shape[0], top, height, m)
    cols = window_indices(sharp_rgb.shape[1], left, width, m)
    window = sharp_rgb[np.ix_(rows, cols)]
    window_radius = np.asarray(radius_px, dtype=np.float32)[np.ix_(rows, cols)]
    return blur(window, window_radius)[m : m + height, m : m + width]


@dataclass(frozen=True)
class Crop:
    """One training example: RGB uint8 images and radii in px, all H×W."""

    blurry: np.ndarray
    sharp: np.ndarray
    radius_px: np.ndarray  # the map the network is given (true or estimated)
    true_radius_px: np.ndarray


@dataclass(frozen=True)
class CropPlan:
    """The random draws behind one crop (see :meth:`PhotoSet.plan`)."""

    photo_index: int
    true_map: np.ndarray  # float H×W radii in px over the whole sample
    top: int
    left: int
    height: int
    width: int
    augment_method: str | None  # None: the crop keeps its true map
    camera: CameraPlan | None = None  # None: the paper's pipeline


class PhotoSet:
    """The sharp photos of one split, decoded once, scaled and centre-cropped to the sample size.

    The split is ``training.cache.split_by_image``'s: the same photos as a
    `svbr synth` cache of the same folder and seed, so `svbr eval` on such a
    cache scores photos training never saw.


    Args:
        images_dir: folder of sharp photos (searched recursively).
        split: ``"train"`` or ``"val"``.
        settings: sample size and the seed of the split.
        lazy: decode each photo on first use, in whichever process uses it: a
            DataLoader worker then receives the paths, not hundreds of MB of pixels.
        pipeline: one of ``PIPELINES``.
        camera_ranges: the camera pipeline's probabilities and ranges.
    """

    def __init__(
        self,
        images_dir: Path,
        split: str,
        settings: SynthSettings,
        lazy: bool = False,
        pipeline: str = "paper",
        camera_ranges: CameraRanges = CAMERA_RANGES,
    ) -> None:
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")
        self.pipeline = pipeline
        self.camera_ranges = camera_ranges
        self.paths = split_by_image(find_images(Path(images_dir)), settings.seed)[split]
        if not self.paths:
            raise ValueError(f"no {split} photos in {images_dir}")
        self.split = split
        self.settings = settings
        self._decoded: dict[int, np.ndarray] = {}
        if not lazy:
            _ = self.photos  # decode all now: unreadable files are reported at once

    def photo(self, index: int) -> np.ndarray:
        """Photo ``index``, RGB uint8 H×W×3, decoded on first use."""
        if index not in self._decoded:
            photo = load_sharp_rgb(self.paths[index], self.settings.height, self.settings.width)
            if photo is None:
                raise ValueError(f"unreadable {self.split} photo: {self.paths[index]}")
            self._decoded[index] = photo
        return self._decoded[index]

    @property
    def photos(self) -> list[np.ndarray]:
        """All decoded samples, RGB uint8 H×W×3, in the order of ``paths``."""
        return [self.photo(i) for i in range(len(self.paths))]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_decoded": {}}

    def __len__(self) -> int:
        return len(self.paths)

    def plan(
        self, rng: np.random.Generator, patch_size: int | None, estimated: bool, photo_index: int | None = None
    ) -> CropPlan:
        """Draw a random photo (or take the given one), map family and draw, crop and estimation method.

        Only the draws: rendering them (:meth:`render`) costs the blur and the
        estimate, so a rank of a distributed run plans every crop of a batch, to
        consume the generator exactly as one process does, and renders its share.
        """
        height, width = self.settings.height, self.settings.width
        if photo_index is None:
            photo_index = int(rng.integers(len(self.paths)))
        family = MAP_FAMILIES[int(rng.integers(len(MAP_FAMILIES)))]
        true_map = draw_map(family, height, width, rng)
        size_h = patch_size or height // SIZE_MULTIPLE * SIZE_MULTIPLE
        size_w = patch_size or width // SIZE_MULTIPLE * SIZE_MULTIPLE
        top = int(rng.integers(0, height - size_h + 1))
        left = int(rng.integers(0, width - size_w + 1))
        methods = CAMERA_AUGMENT_METHODS if self.pipeline == "camera" else AUGMENT_METHODS
        method = methods[int(rng.integers(len(methods)))] if estimated else None
        # Drawn after the paper's draws, so the paper pipeline's batches are unchanged.
        camera = None
        if self.pipeline == "camera" and rng.random() >= self.camera_ranges.paper_probability:
            camera = draw_camera(rng, len(self.paths), self.camera_ranges)
        return CropPlan(photo_index, true_map, top, left, size_h, size_w, method, camera)

    def render(self, plan: CropPlan) -> Crop:
        """The crop a plan describes: blurred, and given its estimated map if the plan has a method."""
        sharp = self.photo(plan.photo_index)
        window = (slice(plan.top, plan.top + plan.height), slice(plan.left, plan.left + plan.width))
        if plan.camera is None:
            blurry = blur_window(sharp, plan.true_map, plan.top, plan.left, plan.height, plan.width)
            target = sharp[window]
            true_crop = np.asarray(plan.true_map[window], dtype=np.float32)
        else:
            blurry, target, true_crop = self._render_camera(plan)
        radius = true_crop
        if plan.augment_method == "runtime":
            radius = runtime_estimate(blurry)
        elif plan.augment_method is not None:
            height, width = self.settings.height, self.settings.width
            radius = propagate(
                blurry, true_crop, method=plan.augment_method, sigma_s_px=min(height, width) / DT_SIGMA_S_DIVISOR
            )
        return Crop(blurry, target, radius, true_crop)

    def _render_camera(self, plan: CropPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The camera pipeline on the crop's window plus ``CAMERA_MARGIN_PX`` of replicated context."""
        assert plan.camera is not None
        height, width = self.settings.height, self.settings.width
        rows = window_indices(height, plan.top, plan.height, CAMERA_MARGIN_PX)
        cols = window_indices(width, plan.left, plan.width, CAMERA_MARGIN_PX)
        cut = np.ix_(rows, cols)
        layers = tuple(self.photo(layer.photo_index)[cut] for layer in plan.camera.layers)
        radius = np.asarray(plan.true_map, dtype=np.float32)[cut]
        return degrade(self.photo(plan.photo_index)[cut], radius, plan.camera, layers, CAMERA_MARGIN_PX)

    def draw(
        self, rng: np.random.Generator, patch_size: int | None, estimated: bool, photo_index: int | None = None
    ) -> Crop:
        """A random photo (or the given one), map family and draw, crop and (if ``estimated``) estimated map."""
        return self.render(self.plan(rng, patch_size, estimated, photo_index))


class OnTheFlyBatches(Dataset):
    """Item ``step`` is that step's batch: (image N×3×P×P, map N×1×P×P, sharp N×3×P×P) tensors.

    Args:
        photos: the training photos.
        patch_size: crop size in px (a multiple of 4), or None for whole samples.
        batch_size: crops per batch.
        augmented_fraction: probability that a crop gets an estimated map (0 in stage 1, 0.5 in stage 2).
        seed: with the step, determines the batch.
        length: number of steps (items).
        shard: (rank, world size): item ``step`` holds only this rank's share of
            the batch, crops ``rank·n … (rank+1)·n − 1`` with n = batch_size / world size.
    """

    def __init__(
        self,
        photos: PhotoSet,
        patch_size: int | None,
        batch_size: int,
        augmented_fraction: float,
        seed: int,
        length: int,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        if patch_size is not None and patch_size % SIZE_MULTIPLE:
            raise ValueError(f"patch_size must be a multiple of {SIZE_MULTIPLE}, got {patch_size}")
        if patch_size is not None and patch_size > min(photos.settings.height, photos.settings.width):
            raise ValueError(
                f"patch_size {patch_size} exceeds the sample size {photos.settings.height}×{photos.settings.width}"
            )
        rank, world_size = shard
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} does not split evenly over {world_size} processes")
        self.photos = photos
        self.shard = shard
        self.patch_size = patch_size
        self.batch_size = batch_size
        self.augmented_fraction = augmented_fraction
        self.seed = seed
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, step])
        plans = [
            self.photos.plan(rng, self.patch_size, rng.random() < self.augmented_fraction)
            for _ in range(self.batch_size)
        ]
        rank, world_size = self.shard
        share = self.batch_size // world_size
        return stack([self.photos.render(plan) for plan in plans[rank * share : (rank + 1) * share]])


def stack(crops: list[Crop]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crops → (image N×3×H×W, map N×1×H×W, sharp N×3×H×W), normalised as the runtime does."""
    images, maps = zip(*(to_network_inputs(c.blurry, c.radius_px) for c in crops))
    targets = [to_target(c.sharp) for c in crops]
    return torch.stack(images), torch.stack(maps), torch.stack(targets)


def validation_crops(
    photos: PhotoSet,
    count: int,
    seed: int,
    estimated: bool,
    shard: tuple[int, int] = (0, 1),
    degradation: str | None = None,
) -> list[Crop]:
    """A fixed validation set: ``count`` whole samples spread evenly over the photos.

    The same photos, maps and estimates for a given (count, seed), on any machine.
    ``shard=(rank, world size)`` keeps samples ``rank, rank + world size, …`` only.
    ``degradation`` (a ``VALIDATION_DEGRADATIONS`` name) adds fixed noise or JPEG
    to the same blurry images, after any map estimate.
    """
    rank, world_size = shard
    crops = []
    for index in np.linspace(0, len(photos) - 1, count).round().astype(int)[rank::world_size]:
        # The generator does not depend on ``estimated``: both kinds score the same blurry images.
        rng = np.random.default_rng([seed, int(index)])
        crop = photos.draw(rng, None, estimated, photo_index=int(index))
        if degradation is not None:
            noisy = degrade_delivered(crop.blurry, degradation, np.random.default_rng([seed, int(index), 1]))
            crop = Crop(noisy, crop.sharp, crop.radius_px, crop.true_radius_px)
        crops.append(crop)
    return crops
