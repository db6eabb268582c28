"""runtime.io: the one set of rules for image and blur-map files (suffixes, readers, writers, pairing, PNG scale)."""

from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import io as media
from runtime.io import (
    IMAGE_SUFFIXES,
    MAP_SUFFIXES,
    MediaError,
    find_map,
    list_images,
    read_blur_map,
    read_image,
    write_blur_map,
    write_image,
)

REPO = Path(__file__).resolve().parent.parent


def test_one_suffix_set_everywhere():
    from runtime import cli
    from runtime.stream import uri

    assert cli.IMAGE_SUFFIXES is IMAGE_SUFFIXES and uri.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".png", ".jpg", ".jpeg", ".tif", ".webp", ".pgm"} <= IMAGE_SUFFIXES
    assert MAP_SUFFIXES[0] == ".npy" and ".png" in MAP_SUFFIXES
    # No module defines its own suffix set or map reader any more; archive.py imports nothing private from cli.py.
    for relative in (
        "runtime/cli.py",
        "runtime/stream/uri.py",
        "runtime/stream/maps.py",
        "runtime/archive.py",
        "runtime/estimate_cli.py",
        "training/cache.py",
    ):
        tree = ast.parse((REPO / relative).read_text())
        assigned = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert not assigned & {"IMAGE_SUFFIXES", "MAP_SUFFIXES"}, relative
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "runtime.cli":
                assert not [a.name for a in node.names if a.name.startswith("_")], relative


def test_list_images_by_suffix(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.txt", "d.npy", "sub/e.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()  # a folder with an image suffix is not an image
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG"]
    assert [p.name for p in list_images(tmp_path, recursive=True)] == ["a.jpg", "b.PNG", "e.tif"]


def test_image_round_trip_and_errors(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    write_image(tmp_path / "deep" / "x.png", image)
    assert np.array_equal(read_image(tmp_path / "deep" / "x.png"), image)
    with pytest.raises(MediaError, match="input image not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(MediaError, match="cannot read"):
        read_image(tmp_path / "junk.png")
    with pytest.raises(MediaError, match="cannot write images with suffix '.xyz'"):
        write_image(tmp_path / "x.xyz", image)


def test_blur_map_npy_and_png_scale(tmp_path):
    radius = np.random.default_rng(1).uniform(0, 6, (9, 7)).astype(np.float32)
    write_blur_map(tmp_path / "m.npy", radius)
    assert np.array_equal(read_blur_map(tmp_path / "m.npy"), radius)
    write_blur_map(tmp_path / "m.png", radius, map_scale=0.01)  # 16-bit, 0.01 px steps
    stored = cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16
    assert np.abs(read_blur_map(tmp_path / "m.png", 0.01) - radius).max() <= 0.005 + 1e-6
    cv2.imwrite(str(tmp_path / "m8.png"), np.full((4, 4), 20, np.uint8))
    assert np.allclose(read_blur_map(tmp_path / "m8.png", 0.25), 5.0)
    with pytest.raises(MediaError, match="--map-scale"):
        read_blur_map(tmp_path / "m.png")
    cv2.imwrite(str(tmp_path / "colour.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(MediaError, match="single-channel"):
        read_blur_map(tmp_path / "colour.png", 1.0)
    (tmp_path / "m.txt").write_text("1")
    with pytest.raises(MediaError, match=r"\.npy or \.png"):
        read_blur_map(tmp_path / "m.txt")
    with pytest.raises(MediaError, match="blur map not found"):
        read_blur_map(tmp_path / "none.npy")


def test_blur_map_rank_and_mmap(tmp_path):
    np.save(tmp_path / "seq.npy", np.zeros((3, 4, 5), np.float16))
    with pytest.raises(MediaError, match="2-D array"):
        read_blur_map(tmp_path / "seq.npy")
    sequence = read_blur_map(tmp_path / "seq.npy", ndim=None, mmap=True)
    assert isinstance(sequence, np.memmap) and sequence.shape == (3, 4, 5)
    np.save(tmp_path / "text.npy", np.array([["a"]]))
    with pytest.raises(MediaError, match="real numbers"):
        read_blur_map(tmp_path / "text.npy")


def test_pairing_by_stem(tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "photo.npy", np.zeros((2, 2), np.float32))
    assert find_map(tmp_path / "photo.jpg", maps) == maps / "photo.npy"
    with pytest.raises(MediaError, match="no blur map for other.jpg: expected other.npy, other.png"):
        find_map(tmp_path / "other.jpg", maps)
    cv2.imwrite(str(maps / "photo.png"), np.zeros((2, 2), np.uint8))
    with pytest.raises(MediaError, match="ambiguous"):
        find_map(tmp_path / "photo.jpg", maps)
    # The image itself is never its own map (images and maps in one folder).
    cv2.imwrite(str(tmp_path / "alone.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(MediaError, match="no blur map"):
        find_map(tmp_path / "alone.png", tmp_path)


def test_stream_reads_maps_through_runtime_io(tmp_path):
    from runtime.stream.errors import MapError
    from runtime.stream.maps import read_map_file

    write_blur_map(tmp_path / "m.png", np.full((3, 3), 2.0, np.float32), map_scale=0.5)
    assert np.allclose(read_map_file(tmp_path / "m.png", 0.5), 2.0)
    with pytest.raises(MapError, match="map_scale"):
        read_map_file(tmp_path / "m.png", None)


def test_output_is_folder(tmp_path):
    assert media.output_is_folder(str(tmp_path)) and media.output_is_folder("not/yet/")
    assert not media.output_is_folder(str(tmp_path / "x.png"))
