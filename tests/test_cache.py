"""`svbr synth`: split by image, determinism, resumability, bad inputs."""

import json

import cv2
import numpy as np
import pytest

from training.cache import SynthSettings, chosen_map_indices, list_samples, main, read_sample, synthesize
from training.synthesis import MAPS_PER_IMAGE, RADIUS_LEVELS


def make_images(folder, count, size=(60, 70)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.full((*size, 3), 120, np.uint8)
        for _ in range(6):  # a few hard-edged rectangles so Canny finds edges
            y, x = rng.integers(0, size[0] - 10), rng.integers(0, size[1] - 10)
            image[y : y + 12, x : x + 15] = rng.integers(0, 256, 3)
        cv2.imwrite(str(folder / f"img{i}.png"), image)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_images(root / "images", 5)
    (root / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    settings = SynthSettings(height=40, width=48, seed=3, maps_per_image=2)
    summary = synthesize(root / "images", root / "cache", settings, workers=1)
    return root, settings, summary


def test_split_by_source_image(cache):
    root, _, summary = cache
    manifest = json.loads((root / "cache" / "manifest.json").read_text())
    train, val = set(manifest["split"]["train"]), set(manifest["split"]["val"])
    assert not train & val and len(train) + len(val) == 6 and len(val) == 1
    stems = lambda split: {p.name.rsplit("_m", 1)[0] for p in (root / "cache" / split).glob("*.npz")}  # noqa: E731
    assert not stems("train") & stems("val")
    assert summary["skipped_images"] and summary["skipped_images"][0].endswith("broken.jpg")


def test_samples_are_complete(cache):
    root, settings, summary = cache
    files = list_samples(root / "cache", "train") + list_samples(root / "cache", "val")
    assert len(files) == summary["samples_written"] == 2 * 5
    sample = read_sample(files[0])
    assert sample.sharp.shape == sample.blurry.shape == (40, 48, 3)
    assert sample.blurry.dtype == np.uint8
    allowed = np.concatenate([[0.0], RADIUS_LEVELS])
    for radius_map in (sample.true_map, sample.augmented_map):
        assert radius_map.shape == (40, 48) and np.isin(radius_map, allowed).all()
    assert sample.augment_method in ("matting", "domain_transform")


def test_rerun_skips_done_samples_and_is_deterministic(cache, tmp_path):
    root, settings, _ = cache
    again = synthesize(root / "images", root / "cache", settings, workers=1)
    assert again["samples_written"] == 0
    fresh = synthesize(root / "images", tmp_path / "fresh", settings, workers=2)
    assert fresh["samples_written"] == 10
    for original in list_samples(root / "cache", "train"):
        copy = read_sample(tmp_path / "fresh" / "train" / original.name)
        np.testing.assert_array_equal(read_sample(original).blurry, copy.blurry)


def test_changed_settings_refuse_to_mix(cache):
    root, settings, _ = cache
    with pytest.raises(ValueError, match="other settings"):
        synthesize(root / "images", root / "cache", SynthSettings(40, 48, seed=4, maps_per_image=2))


def test_map_subset_spreads_over_families():
    picks = chosen_map_indices(np.random.default_rng(0), 13)
    assert len(set(picks // 3)) == 13
    assert len(set(chosen_map_indices(np.random.default_rng(0), 20))) == 20
    assert list(chosen_map_indices(np.random.default_rng(0), MAPS_PER_IMAGE)) == list(range(39))


def test_missing_and_empty_folders_are_clear_errors(tmp_path, capsys):
    assert main(["--images", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--images", str(tmp_path / "empty"), "--out", str(tmp_path / "c")]) == 2
    assert "no images" in capsys.readouterr().err


def test_one_split_only_makes_an_evaluation_cache(cache, tmp_path):
    root, settings, _ = cache
    summary = synthesize(root / "images", tmp_path / "val-only", settings, workers=1, splits=("val",))
    assert summary["samples_total"] == {"train": 0, "val": 2}
    for original in list_samples(tmp_path / "val-only", "val"):  # the same samples as the full cache's
        np.testing.assert_array_equal(
            read_sample(original).blurry, read_sample(root / "cache" / "val" / original.name).blurry
        )
    with pytest.raises(ValueError, match="splits"):
        synthesize(root / "images", tmp_path / "x", settings, splits=("test",))
