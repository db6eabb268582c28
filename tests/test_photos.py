"""On-the-fly training data: a blurred crop equals the crop of the blurred sample; batches are f(seed, step)."""

import pickle

import numpy as np
import pytest
import torch

from runtime.constants import RADIUS_LEVELS_PX
from runtime.defocus import blur
from tests.test_cache import make_images
from training.cache import SynthSettings, find_images, split_by_image
from training.photos import BLUR_MARGIN_PX, OnTheFlyBatches, PhotoSet, blur_window, validation_crops
from training.synthesis import MAP_FAMILIES, draw_map

SETTINGS = SynthSettings(64, 60, seed=0)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos") / "images"
    make_images(folder, 6, size=(80, 70))
    return folder


def test_margin_is_the_largest_disk_half_width():
    assert BLUR_MARGIN_PX == 6  # the 6-px disk covers pixels up to 6 px from its centre


@pytest.mark.parametrize("family", MAP_FAMILIES)
def test_blurred_window_equals_the_window_of_the_blurred_sample(family):
    rng = np.random.default_rng(3)
    sharp = rng.integers(0, 256, (64, 60, 3), dtype=np.uint8)
    radius = draw_map(family, 64, 60, rng)
    whole = blur(sharp, radius)
    # Corners, edges and the interior: the window's margin leaves the sample on every side.
    for top, left, height, width in [(0, 0, 24, 20), (40, 40, 24, 20), (10, 0, 32, 32), (5, 7, 40, 44), (0, 0, 64, 60)]:
        window = blur_window(sharp, radius, top, left, height, width)
        assert np.array_equal(window, whole[top : top + height, left : left + width]), (top, left)


def test_photo_set_uses_the_cache_split(images):
    photos = PhotoSet(images, "val", SETTINGS)
    assert photos.paths == split_by_image(find_images(images), SETTINGS.seed)["val"]
    assert photos.photos[0].shape == (64, 60, 3) and photos.photos[0].dtype == np.uint8


def test_lazy_photo_set_pickles_without_pixels(images):
    photos = PhotoSet(images, "train", SETTINGS, lazy=True)
    assert len(photos.photos) == len(photos)  # decodes every photo
    clone = pickle.loads(pickle.dumps(photos))
    assert clone._decoded == {} and len(clone) == len(photos)
    assert np.array_equal(clone.photos[1], photos.photos[1])


def test_batches_are_a_function_of_seed_and_step(images):
    photos = PhotoSet(images, "train", SETTINGS, lazy=True)
    batches = OnTheFlyBatches(photos, 32, 3, augmented_fraction=0.5, seed=7, length=10)
    again = OnTheFlyBatches(PhotoSet(images, "train", SETTINGS, lazy=True), 32, 3, 0.5, seed=7, length=10)
    first = batches[4]
    assert all(torch.equal(a, b) for a, b in zip(first, again[4]))
    assert not torch.equal(first[0], batches[5][0])
    image, blur_map, sharp = first
    assert image.shape == (3, 3, 32, 32) and blur_map.shape == (3, 1, 32, 32) and sharp.shape == (3, 3, 32, 32)
    assert float(blur_map.min()) >= 0 and float(blur_map.max()) <= 1


def test_estimated_maps_lie_on_the_levels(images):
    photos = PhotoSet(images, "train", SETTINGS)
    crop = photos.draw(np.random.default_rng(0), 40, estimated=True)
    allowed = np.concatenate([[0.0], RADIUS_LEVELS_PX])
    assert np.isin(crop.radius_px, allowed).all()
    assert crop.radius_px.shape == crop.true_radius_px.shape == (40, 40)


def test_patch_size_is_checked(images):
    photos = PhotoSet(images, "train", SETTINGS, lazy=True)
    with pytest.raises(ValueError, match="multiple of 4"):
        OnTheFlyBatches(photos, 30, 2, 0.0, 0, 1)
    with pytest.raises(ValueError, match="exceeds the sample size"):
        OnTheFlyBatches(photos, 128, 2, 0.0, 0, 1)


def test_validation_crops_are_whole_samples_and_fixed(images):
    photos = PhotoSet(images, "val", SETTINGS)
    true = validation_crops(photos, 2, seed=0, estimated=False)
    estimated = validation_crops(photos, 2, seed=0, estimated=True)
    assert true[0].blurry.shape == (64, 60, 3)
    for a, b in zip(true, estimated):  # the same blurry images, scored with either map
        assert np.array_equal(a.blurry, b.blurry) and np.array_equal(a.true_radius_px, b.true_radius_px)
