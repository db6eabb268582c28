"""``runtime.estimate_blur_map`` and the commands around it, on synthetic scenes with known blur."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

import runtime.estimate as estimate_module
from runtime import Deblurrer, cli, estimate_blur_map, estimate_cli
from runtime.constants import RADIUS_LEVELS_PX
from runtime.defocus import blur
from runtime.domain_transform import normalized_convolution, recursive_filter
from runtime.estimate import NoEdgesWarning, SaturatedEstimateWarning, sigma_to_radius_px

LEVELS = set(np.concatenate([[0.0], RADIUS_LEVELS_PX]).tolist())


def step_scene(height: int = 96, width: int = 128) -> np.ndarray:
    """A vertical and a horizontal step edge (dark/bright quadrants), uint8 BGR."""
    image = np.full((height, width, 3), 60, np.uint8)
    image[:, width // 2 :] = 190
    image[height // 2 :, :] //= 2
    return image


def rectangles_scene(seed: int = 0, height: int = 192, width: int = 224) -> np.ndarray:
    """Random grey rectangles: textured, with edges at many orientations and spacings, uint8 BGR."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 128, np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, height - 12), rng.integers(0, width - 12)
        h, w = rng.integers(12, 60, size=2)
        image[y : y + h, x : x + w] = rng.integers(20, 236, size=3)
    return image


def dead_leaves_scene(seed: int = 0, height: int = 192, width: int = 224, discs: int = 600) -> np.ndarray:
    """Overlapping discs of heavy-tailed sizes and random colours: closer to natural-image edge statistics."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 128, np.uint8)
    for _ in range(discs):
        radius = int(np.clip(3 / rng.random() ** (1 / 1.5), 3, 60))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, radius, tuple(int(v) for v in rng.integers(0, 256, 3)), -1, lineType=cv2.LINE_AA)
    return image


def blurred(image: np.ndarray, radius: float) -> np.ndarray:
    return image if radius == 0 else blur(image, np.full(image.shape[:2], radius, np.float32))


@pytest.mark.filterwarnings("ignore::runtime.estimate.SaturatedEstimateWarning")
@pytest.mark.parametrize("method", ["learned", "table"])
def test_blurred_step_edge_gives_a_monotone_estimate(method):
    medians = [float(np.median(estimate_blur_map(blurred(step_scene(), r), method=method))) for r in (1, 2, 3, 4, 5)]
    assert all(b > a for a, b in zip(medians, medians[1:])), medians


def test_unknown_method_is_a_value_error():
    with pytest.raises(ValueError, match="learned, table"):
        estimate_blur_map(rectangles_scene(), method="magic")


def test_regressor_weights_are_small_numpy_arrays():
    with np.load(estimate_module.REGRESSOR_PATH, allow_pickle=False) as weights:
        assert weights["w0"].shape == (11, 64) and weights["w2"].shape == (64, 1)
    assert estimate_module.REGRESSOR_PATH.stat().st_size < 64 * 1024


@pytest.mark.parametrize("radius", [1.0, 2.0, 3.0, 4.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_uniform_blur_gives_about_that_radius(radius, seed):
    # Both methods are fitted on natural photos, whose neighbouring edges pull the raw ratio low;
    # clean synthetic edges read up to ~0.75 px high (measured, learned: 1.25-1.5 / 2.5 / 3.5 / 4.5
    # for r = 1 / 2 / 3 / 4; table: 1.25-1.5 / 2-2.25 / 3.25 / 4.5-4.75), hence the tolerance.
    for method in ("learned", "table"):
        estimate = estimate_blur_map(blurred(dead_leaves_scene(seed), radius), method=method)
        assert abs(float(np.median(estimate)) - radius) <= 0.75, (method, np.median(estimate))


def test_sharp_scene_reads_mostly_in_focus():
    estimate = estimate_blur_map(rectangles_scene())
    assert float(np.median(estimate)) <= 0.75


def test_values_lie_on_the_levels_with_the_image_shape():
    image = blurred(rectangles_scene(1, 150, 170), 2.5)
    estimate = estimate_blur_map(image)
    assert estimate.shape == image.shape[:2] and estimate.dtype == np.float32
    assert set(np.unique(estimate).tolist()) <= LEVELS


def test_channel_order_and_float_input_agree():
    image = blurred(rectangles_scene(2), 2.0)
    bgr = estimate_blur_map(image)
    np.testing.assert_array_equal(bgr, estimate_blur_map(np.ascontiguousarray(image[..., ::-1]), channel_order="rgb"))
    np.testing.assert_array_equal(bgr, estimate_blur_map(image.astype(np.float32) / np.float32(255)))


@pytest.mark.parametrize("image", [np.full((64, 80, 3), 128, np.uint8), np.zeros((64, 80, 3), np.float32)])
def test_flat_image_gives_the_all_zero_map_and_a_warning(image):
    with pytest.warns(NoEdgesWarning, match="no reliable edge"):
        estimate = estimate_blur_map(image)
    assert estimate.shape == (64, 80) and not estimate.any()


def test_faint_noise_on_a_flat_image_is_not_taken_for_edges():
    image = np.clip(128 + np.random.default_rng(0).normal(0, 1.0, (64, 80, 3)), 0, 255).astype(np.uint8)
    with pytest.warns(NoEdgesWarning):
        assert not estimate_blur_map(image).any()


def test_blur_beyond_the_trained_range_warns():
    with pytest.warns(SaturatedEstimateWarning, match="downscale"):
        estimate_blur_map(blurred(rectangles_scene(), 8.0))  # judged on the table method's map, as here:
    with pytest.warns(SaturatedEstimateWarning):
        assert estimate_blur_map(blurred(rectangles_scene(), 8.0), method="table").max() == 6.0


def test_large_photos_are_estimated_downscaled_in_their_own_pixels(monkeypatch):
    image = blurred(dead_leaves_scene(3, 240, 280), 4.0)
    monkeypatch.setattr(estimate_module, "MAX_ESTIMATE_PIXELS", image.shape[0] * image.shape[1] // 4)
    estimate = estimate_blur_map(image)  # measured at half size, radii doubled back
    assert estimate.shape == image.shape[:2]
    assert abs(float(np.median(estimate)) - 4.0) <= 1.0, np.median(estimate)


@pytest.mark.parametrize(
    "image, kwargs, message",
    [
        (np.zeros((40, 40), np.uint8), {}, "3 dimensions"),
        (np.zeros((40, 40, 4), np.uint8), {}, "3 colour channels"),
        (np.zeros((40, 40, 3), np.float64), {}, "uint8 or float32"),
        (np.zeros((0, 40, 3), np.uint8), {}, "empty"),
        (np.full((40, 40, 3), np.nan, np.float32), {}, "NaN"),
        (np.full((40, 40, 3), 2.0, np.float32), {}, r"\[0, 1\]"),
        (np.zeros((40, 40, 3), np.uint8), {"channel_order": "bgra"}, "channel_order"),
        ([[0, 1]], {}, "numpy array"),
        (np.zeros((8, 40, 3), np.uint8), {}, "at least 16"),
    ],
)
def test_bad_input_raises_value_errors(image, kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate_blur_map(image, **kwargs)


def test_sigma_to_radius_follows_the_dandres_table():
    sigma = np.array([0.3, 0.65, 1.125, 1.65, 2.2, 2.725, 3.275])
    np.testing.assert_allclose(sigma_to_radius_px(sigma), [0.5, 1, 2, 3, 4, 5, 6], atol=1e-6)
    assert sigma_to_radius_px(np.array([0.0]))[0] == 0.0
    assert sigma_to_radius_px(np.array([3.275 + 0.532]))[0] == pytest.approx(7.0, abs=1e-5)
    values = sigma_to_radius_px(np.linspace(0, 5, 200))
    assert np.all(np.diff(values) > 0)


def test_the_training_side_uses_the_runtime_domain_transform():
    from training import augment

    assert augment.recursive_filter is recursive_filter


def test_normalized_convolution_of_a_constant_is_that_constant():
    rng = np.random.default_rng(0)
    guide = rng.random((30, 40, 3))
    weights = (rng.random((30, 40)) < 0.05).astype(np.float64)
    values, _ = normalized_convolution(np.full((30, 40), 2.5), weights, guide, 5.0, 3.75, 3)
    np.testing.assert_allclose(values, 2.5, rtol=1e-9)


# --- Deblurrer and the commands ---------------------------------------------------


def test_deblur_without_a_map_estimates_one(random_onnx_model):
    image = blurred(rectangles_scene(4, 96, 120), 2.0)
    deblurrer = Deblurrer(random_onnx_model, tile=None)
    sharp, radius = deblurrer.deblur(image, return_map=True)
    np.testing.assert_array_equal(radius, estimate_blur_map(image))
    np.testing.assert_array_equal(sharp, deblurrer.deblur(image, radius))
    np.testing.assert_array_equal(sharp, deblurrer.deblur(image))
    with pytest.raises(ValueError, match="3 colour channels"):
        deblurrer.deblur(np.zeros((40, 40, 5), np.uint8))


def test_deblur_without_a_map_on_a_flat_image_warns_and_runs(random_onnx_model):
    with pytest.warns(NoEdgesWarning):
        sharp = Deblurrer(random_onnx_model, tile=None).deblur(np.full((40, 48, 3), 100, np.uint8))
    assert sharp.shape == (40, 48, 3)


def test_svbr_estimate_writes_a_map_and_a_preview(tmp_path, capsys):
    image = blurred(rectangles_scene(5, 96, 120), 3.0)
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    code = estimate_cli.main(
        [str(tmp_path / "photo.png"), "-o", str(tmp_path / "map.npy"), "--preview", str(tmp_path / "map.png")]
    )
    assert code == 0
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy"), estimate_blur_map(image))
    preview = cv2.imread(str(tmp_path / "map.png"))
    assert preview.shape[0] > 96 and preview.shape[1] >= 120  # the map plus its scale bar
    assert "radius median" in capsys.readouterr().out


def test_svbr_estimate_folder_mode(tmp_path):
    (tmp_path / "in").mkdir()
    for name, radius in (("a", 1.0), ("b", 3.0)):
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), blurred(rectangles_scene(6, 80, 90), radius))
    code = estimate_cli.main(
        [str(tmp_path / "in"), "-o", str(tmp_path / "maps"), "--preview", str(tmp_path / "previews"), "-q"]
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["a.npy", "b.npy"]
    assert sorted(p.name for p in (tmp_path / "previews").iterdir()) == ["a.png", "b.png"]
    assert np.median(np.load(tmp_path / "maps" / "b.npy")) > np.median(np.load(tmp_path / "maps" / "a.npy"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.png", "-o", "m.npy"], "input not found"),
        (["photo.png", "-o", "m.txt"], ".npy"),
        (["photo.png", "-o", "m.npy", "--preview", "p.xyz"], "cannot write"),
        (["tiny.png", "-o", "m.npy"], "at least 16"),
    ],
)
def test_svbr_estimate_errors_are_one_line(tmp_path, capsys, args, message):
    cv2.imwrite(str(tmp_path / "photo.png"), rectangles_scene(7, 40, 40))
    cv2.imwrite(str(tmp_path / "tiny.png"), np.full((8, 40, 3), 90, np.uint8))
    code = estimate_cli.main([str(tmp_path / a) if not a.startswith("-") else a for a in args] + ["-q"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("svbr estimate: error:") and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_svbr_deblur_without_blur_map_file_and_folder(tmp_path, capsys, random_onnx_model):
    (tmp_path / "in").mkdir()
    image = blurred(rectangles_scene(8, 72, 88), 2.0)
    cv2.imwrite(str(tmp_path / "in" / "a.png"), image)
    cv2.imwrite(str(tmp_path / "in" / "b.png"), blurred(rectangles_scene(9, 72, 88), 3.0))
    assert (
        cli.main(
            [
                str(tmp_path / "in" / "a.png"),
                "-o",
                str(tmp_path / "a_sharp.png"),
                "--model",
                str(random_onnx_model),
                "-q",
            ]
        )
        == 0
    )
    expected = Deblurrer(random_onnx_model).deblur(image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "a_sharp.png")), expected)
    assert (
        cli.main([str(tmp_path / "in"), "-o", str(tmp_path / "out") + "/", "--model", str(random_onnx_model), "-q"])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_svbr_lists_the_estimate_command():
    import svbr_cli

    assert "estimate" in svbr_cli.COMMANDS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert svbr_cli.COMMANDS["estimate"][0] == "runtime.estimate_cli"


def test_accuracy_benchmark_runs_and_writes_its_report(tmp_path, monkeypatch):
    """benchmarks/estimate.py end to end on tiny synthetic 'photos' (real numbers come from the README's command)."""
    import json

    from benchmarks import estimate as bench
    from tests.test_cache import make_images

    make_images(tmp_path / "photos", 10, size=(60, 80))
    monkeypatch.setattr(bench, "PHOTO_HW", (64, 96))
    monkeypatch.setattr(bench, "CALIBRATION_RADII", (0.0, 2.0, 4.0))
    code = bench.main(
        [
            "--images",
            str(tmp_path / "photos"),
            "--parts",
            "calibration,dense",
            "--photos",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "out" / "estimate.json").read_text())
    assert [lv["radius"] for lv in report["calibration"]["levels"]] == [0.0, 2.0, 4.0]
    assert len(report["dense"]["families"]) == 13 and report["dense"]["all"]["estimated"]["mae"] >= 0
    assert (tmp_path / "out" / "calibration.png").stat().st_size > 0
    assert "--parts calibration,dense" in (tmp_path / "out" / "estimate.md").read_text()


def test_deblur_estimates_for_camera_formats_too(random_onnx_model):
    image = blurred(dead_leaves_scene(0, 64, 80), 2.0)
    deblurrer = Deblurrer(random_onnx_model, tile=None)
    sharp, radius = deblurrer.deblur(np.ascontiguousarray(image[..., 1]), return_map=True)  # mono frame
    assert sharp.shape == (64, 80) and sharp.dtype == np.uint8 and radius.shape == (64, 80)
    assert set(np.unique(radius).tolist()) <= LEVELS
    assert deblurrer.deblur(image.astype(np.uint16) * 257).dtype == np.uint16
