"""``svbr deblur`` (files, PNG maps, folders, errors) and ``svbr demo``, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import runtime.deblurrer
from runtime import Deblurrer, cli, demo

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 26, 30


def write_inputs(
    folder: Path, name: str = "photo", seed: int = 0, size=(HEIGHT, WIDTH)
) -> tuple[Path, Path, np.ndarray]:
    """An image PNG and its .npy radius map (radii multiples of 1/100 px, so a 16-bit PNG holds them exactly)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    radius = rng.integers(0, 600, size).astype(np.float32) * np.float32(0.01)
    cv2.imwrite(str(folder / f"{name}.png"), image)
    np.save(folder / f"{name}.npy", radius)
    return folder / f"{name}.png", folder / f"{name}.npy", radius


def run_cli(capsys, *args: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def reference(random_onnx_model):
    """Deblurrer with the settings the CLI tests pass, for bit-exact comparisons."""
    return Deblurrer(random_onnx_model, backend="onnxruntime-cpu", tile=None)


def test_single_image_with_npy_map(tmp_path, capsys, random_onnx_model, reference):
    image_path, map_path, radius = write_inputs(tmp_path / "in")
    out = tmp_path / "out" / "sharp.png"
    code, stdout, _ = run_cli(
        capsys, image_path, "--blur-map", map_path, "-o", out, "--model", random_onnx_model, "--tile", 0
    )
    assert code == 0 and "wrote 1 image" in stdout
    result = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    expected = reference.deblur(cv2.imread(str(image_path)), radius)
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("bits", [8, 16])
def test_png_map_with_scale_equals_npy_map(tmp_path, capsys, random_onnx_model, reference, bits):
    image_path, _, _ = write_inputs(tmp_path)
    rng = np.random.default_rng(5)
    if bits == 16:
        values, scale = rng.integers(0, 600, (HEIGHT, WIDTH)).astype(np.uint16), 0.01
    else:
        values, scale = rng.integers(0, 256, (HEIGHT, WIDTH)).astype(np.uint8), 6 / 255
    cv2.imwrite(str(tmp_path / "map.png"), values)
    out = tmp_path / "sharp.png"
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        tmp_path / "map.png",
        "--map-scale",
        scale,
        "-o",
        out,
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
    )
    assert code == 0, err
    expected = reference.deblur(cv2.imread(str(image_path)), values.astype(np.float32) * np.float32(scale))
    np.testing.assert_array_equal(cv2.imread(str(out)), expected)


def test_folder_mode_matches_maps_by_name(tmp_path, capsys, random_onnx_model, reference):
    images, maps = tmp_path / "images", tmp_path / "maps"
    first, first_map, first_radius = write_inputs(images, "a", seed=1)
    second, second_map, _ = write_inputs(images, "b", seed=2, size=(20, 17))
    for path in (first_map, second_map):
        maps.mkdir(exist_ok=True)
        path.rename(maps / path.name)
    code, stdout, err = run_cli(
        capsys, images, "--blur-map", maps, "-o", tmp_path / "sharp", "--model", random_onnx_model, "--tile", 0
    )
    assert code == 0, err
    assert "wrote 2 images" in stdout
    assert cv2.imread(str(tmp_path / "sharp" / "b.png")).shape == (20, 17, 3)
    expected = reference.deblur(cv2.imread(str(first)), first_radius)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "sharp" / "a.png")), expected)


def test_large_radii_warn_but_succeed(tmp_path, capsys, random_onnx_model):
    image_path, _, radius = write_inputs(tmp_path)
    np.save(tmp_path / "big.npy", radius + 7)
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        tmp_path / "big.npy",
        "-o",
        tmp_path / "o.png",
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
        "--max-radius",
        6,
    )
    assert code == 0
    assert "warning" in err and "clipped to 6 px" in err
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        tmp_path / "big.npy",
        "-o",
        tmp_path / "o.png",
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
    )
    assert code == 0 and err == ""  # up to 48 px: the pyramid deblurs them
    np.save(tmp_path / "huge.npy", radius + 50)
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        tmp_path / "huge.npy",
        "-o",
        tmp_path / "o.png",
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
    )
    assert code == 0 and "clipped to 48 px" in err


def test_strength_and_max_radius_options(tmp_path, capsys, random_onnx_model):
    image_path, map_path, radius = write_inputs(tmp_path)
    image = cv2.imread(str(image_path))
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        map_path,
        "-o",
        tmp_path / "zero.png",
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
        "--strength",
        0,
    )
    assert code == 0, err
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "zero.png")), image)
    code, _, err = run_cli(
        capsys,
        image_path,
        "--blur-map",
        map_path,
        "-o",
        tmp_path / "half.png",
        "--model",
        random_onnx_model,
        "--tile",
        0,
        "-q",
        "--strength",
        0.5,
        "--max-radius",
        24,
    )
    assert code == 0, err
    expected = Deblurrer(random_onnx_model, tile=None, strength=0.5, max_radius_px=24).deblur(image, radius)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "half.png")), expected)
    for option, value in (
        ("--strength", "2.5"),
        ("--strength", "nan"),
        ("--max-radius", "4"),
        ("--max-radius", "1000"),
    ):
        code, _, err = run_cli(
            capsys,
            image_path,
            "--blur-map",
            map_path,
            "-o",
            tmp_path / "x.png",
            "--model",
            random_onnx_model,
            option,
            value,
        )
        assert code == 2 and err.startswith(f"svbr deblur: error: {option}:"), err
        assert len(err.strip().splitlines()) == 1


def bad_case(tmp_path: Path, case: str) -> tuple[list[object], str]:
    """Arguments for one broken invocation and the error text it must print."""
    image_path, map_path, radius = write_inputs(tmp_path / "in")
    out = tmp_path / "out.png"
    if case == "missing input":
        return [tmp_path / "nope.png", "--blur-map", map_path, "-o", out], "input not found"
    if case == "missing map":
        return [image_path, "--blur-map", tmp_path / "nope.npy", "-o", out], "blur map not found"
    if case == "unreadable image":
        (tmp_path / "junk.png").write_bytes(b"not an image")
        return [tmp_path / "junk.png", "--blur-map", map_path, "-o", out], "cannot read"
    if case == "size mismatch":
        np.save(tmp_path / "small.npy", radius[:-2])
        return [image_path, "--blur-map", tmp_path / "small.npy", "-o", out], "px but image"
    if case == "3-D map":
        np.save(tmp_path / "cube.npy", radius[..., None])
        return [image_path, "--blur-map", tmp_path / "cube.npy", "-o", out], "2-D array"
    if case == "negative radii":
        np.save(tmp_path / "neg.npy", radius - 1)
        return [image_path, "--blur-map", tmp_path / "neg.npy", "-o", out], "negative radii"
    if case == "png map without scale":
        cv2.imwrite(str(tmp_path / "m.png"), np.zeros((HEIGHT, WIDTH), np.uint8))
        return [image_path, "--blur-map", tmp_path / "m.png", "-o", out], "--map-scale"
    if case == "colour png map":
        cv2.imwrite(str(tmp_path / "m.png"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
        return [image_path, "--blur-map", tmp_path / "m.png", "--map-scale", 1, "-o", out], "single-channel"
    if case == "unknown map format":
        (tmp_path / "m.txt").write_text("1 2 3")
        return [image_path, "--blur-map", tmp_path / "m.txt", "-o", out], ".npy or .png"
    if case == "bad output suffix":
        return [image_path, "--blur-map", map_path, "-o", tmp_path / "out.xyz"], "cannot write"
    if case == "folder without map":
        (tmp_path / "maps").mkdir()
        return [tmp_path / "in", "--blur-map", tmp_path / "maps", "-o", tmp_path / "o"], "no blur map for photo.png"
    if case == "folder with file map":
        return [tmp_path / "in", "--blur-map", map_path, "-o", tmp_path / "o"], "must be a folder too"
    if case == "ambiguous map":
        (tmp_path / "maps").mkdir()
        np.save(tmp_path / "maps" / "photo.npy", radius)
        cv2.imwrite(str(tmp_path / "maps" / "photo.png"), np.zeros((HEIGHT, WIDTH), np.uint8))
        return [image_path, "--blur-map", tmp_path / "maps", "-o", out], "ambiguous"
    if case == "missing model":
        return [image_path, "--blur-map", map_path, "-o", out, "--model", tmp_path / "m.onnx"], "model not found"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "missing input",
        "missing map",
        "unreadable image",
        "size mismatch",
        "3-D map",
        "negative radii",
        "png map without scale",
        "colour png map",
        "unknown map format",
        "bad output suffix",
        "folder without map",
        "folder with file map",
        "ambiguous map",
        "missing model",
    ],
)
def test_file_problems_give_one_line_errors(tmp_path, capsys, random_onnx_model, case):
    args, message = bad_case(tmp_path, case)
    if "--model" not in args:
        args += ["--model", random_onnx_model]
    code, _, err = run_cli(capsys, *args, "-q")
    assert code == 2
    assert err.startswith("svbr deblur: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_demo_runs_and_reports_scores(tmp_path, capsys, random_onnx_model):
    out = tmp_path / "demo.png"
    assert demo.main(["--model", str(random_onnx_model), "-o", str(out), "--size", "64x48"]) == 0
    printed = capsys.readouterr().out
    picture = cv2.imread(str(out))
    assert picture.shape == (48, 4 * 64, 3)
    assert re.search(r"blurry\s+[\d.]+\s+0\.\d{4}", printed)
    assert re.search(r"deblurred\s+[\d.]+\s+-?\d\.\d{4}", printed)
    assert "PSNR" in printed and "SSIM" in printed


def test_demo_blur_map_is_in_focus_left_and_blurred_right():
    scene = demo.make_scene(64, 80)
    radius = demo.make_blur_map(64, 80)
    blurry = demo.blur(scene, radius)
    assert radius[:, 0].max() == 0 and radius[:, -1].min() == pytest.approx(5.0)
    np.testing.assert_array_equal(blurry[:, :8], scene[:, :8])  # in focus on the left
    assert np.abs(blurry[:, -20:].astype(int) - scene[:, -20:]).mean() > 5  # blurred on the right


def test_demo_without_bundled_model_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runtime.deblurrer, "BUNDLED_MODEL_PATH", tmp_path / "svbrnet.onnx")
    assert demo.main(["-o", str(tmp_path / "d.png")]) == 2
    assert "svbr export --bundled" in capsys.readouterr().err


def test_svbr_command_runs_the_demo(tmp_path, random_onnx_model):
    """Through the real entry point (`svbr demo`), as a user types it."""
    command = [
        sys.executable,
        "-c",
        "import sys, svbr_cli; sys.exit(svbr_cli.main())",
        "demo",
        "--model",
        str(random_onnx_model),
        "-o",
        str(tmp_path / "d.png"),
        "--size",
        "40x40",
    ]
    result = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 0, result.stderr
    assert "deblurred" in result.stdout and (tmp_path / "d.png").is_file()
