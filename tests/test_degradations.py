"""Camera-realistic degradations: each stage against an independent oracle or an exact property."""

import numpy as np
import pytest

from runtime.constants import RADIUS_LEVELS_PX
from runtime.defocus import blur, disk_kernel
from tests.test_cache import make_images
from training.cache import SynthSettings
from training.degradations import (
    CAMERA_MARGIN_PX,
    CAMERA_RANGES,
    CameraPlan,
    Layer,
    PsfShape,
    add_sensor_noise,
    add_srgb_noise,
    composite_layer,
    defocus,
    degrade,
    draw_camera,
    jpeg,
    linear_to_srgb,
    psf_kernel,
    random_mask,
    second_moment_px2,
    srgb_to_linear,
)
from training.photos import OnTheFlyBatches, PhotoSet, degrade_delivered, validation_crops

SHAPES = CAMERA_RANGES.psf_shapes


def test_ranges_are_consistent():
    assert len(CAMERA_RANGES.psf_weights) == len(SHAPES) and np.isclose(sum(CAMERA_RANGES.psf_weights), 1.0)
    assert np.isclose(sum(CAMERA_RANGES.noise_weights), 1.0)
    assert CAMERA_RANGES.jpeg_quality == (60, 100)  # the range


def test_srgb_curve_matches_the_standard_and_inverts():
    # IEC 61966-2-1 reference points: 0.5 sRGB is 0.21404 linear; the linear segment below 0.04045.
    assert np.isclose(srgb_to_linear(np.float32(0.5)), 0.21404, atol=1e-5)
    assert np.isclose(srgb_to_linear(np.float32(0.02)), 0.02 / 12.92)
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-6)


@pytest.mark.parametrize("kind", SHAPES)
@pytest.mark.parametrize("radius", [2.0, 3.5, 6.0])
def test_every_psf_is_normalised_centred_and_labelled_by_its_second_moment(kind, radius):
    kernel = psf_kernel(PsfShape(kind=kind, rotation_rad=0.3), radius)
    assert kernel.dtype == np.float32 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert np.isclose(kernel.sum(), 1.0, atol=1e-5) and kernel.min() >= 0
    half = kernel.shape[0] // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1]
    assert abs(np.sum(kernel * x)) < 0.05 and abs(np.sum(kernel * y)) < 0.05
    # The label is the radius of the disk with the same second moment, R²/2, plus the 1/6 px² that
    # integrating over a pixel's square adds, up to the pixel grid.
    assert second_moment_px2(kernel) == pytest.approx(radius**2 / 2 + 1 / 6, abs=0.05 * radius**2)


def test_disk_psf_is_the_papers_disk():
    assert np.array_equal(psf_kernel(PsfShape("disk"), 3.25), disk_kernel(3.25))


def test_annulus_has_a_dim_centre_and_light_field_is_a_lattice():
    annulus = psf_kernel(PsfShape("annulus", inner_ratio=0.6, inner_level=0.1), 6.0)
    centre = annulus[annulus.shape[0] // 2, annulus.shape[1] // 2]
    assert centre < 0.3 * annulus.max()
    lattice = psf_kernel(PsfShape("light_field", views=3), 5.0)
    assert np.count_nonzero(lattice > 1e-3) <= 4 * 9  # nine views, each splatted on at most four pixels


def test_defocus_with_disks_in_srgb_space_is_the_papers_blur():
    # Oracle: runtime.defocus.blur (the paper's pipeline) on the same values, before rounding.
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    radius = RADIUS_LEVELS_PX[rng.integers(0, len(RADIUS_LEVELS_PX), (40, 36))]
    radius[:5] = 0
    ours = defocus(image.astype(np.float32), radius, PsfShape("disk"))
    assert np.abs(np.rint(ours) - blur(image, radius)).max() <= 1


def test_in_focus_layer_over_a_background_cuts_a_sharp_silhouette():
    background = np.full((30, 30, 3), 0.2, np.float32)
    foreground = np.full((30, 30, 3), 0.8, np.float32)
    alpha = np.zeros((30, 30), np.float32)
    alpha[:, 15:] = 1
    sharp = composite_layer(background, foreground, alpha, 0.0, PsfShape())
    assert np.array_equal(sharp[:, :15], background[:, :15]) and np.allclose(sharp[:, 15:], 0.8)
    # Defocused, the foreground bleeds over the edge, and total light is conserved along a row.
    soft = composite_layer(background, foreground, alpha, 4.0, PsfShape())
    assert 0.2 < soft[15, 13, 0] < 0.8 and np.isclose(soft[15].sum(), sharp[15].sum(), rtol=0.02)


def test_random_mask_covers_the_asked_area():
    mask = random_mask(96, 80, 0.3, np.random.default_rng(1))
    assert mask.min() >= 0 and mask.max() <= 1 and abs((mask > 0.5).mean() - 0.3) < 0.05


def test_sensor_noise_variance_follows_the_poisson_gaussian_model():
    rng = np.random.default_rng(2)
    for level in (0.05, 0.5):
        x = np.full((200, 200, 3), level, np.float32)
        noisy = add_sensor_noise(x, 1e-3, 1e-5, rng)
        assert np.var(noisy - x) == pytest.approx(1e-3 * level + 1e-5, rel=0.05)


def test_srgb_noise_and_jpeg():
    rng = np.random.default_rng(3)
    grey = np.full((64, 64, 3), 128, np.uint8)
    noisy = add_srgb_noise(grey, 5.0, gray=False, rng=rng)
    assert np.std(noisy.astype(float) - 128) == pytest.approx(5.0, rel=0.05)
    luma_only = add_srgb_noise(grey, 5.0, gray=True, rng=rng)
    assert np.array_equal(luma_only[..., 0], luma_only[..., 2])
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert not np.array_equal(jpeg(image, 60), image)
    assert np.abs(jpeg(image, 100).astype(int) - image).mean() < np.abs(jpeg(image, 60).astype(int) - image).mean()


def test_clean_disk_plan_is_blur_in_linear_light():
    rng = np.random.default_rng(4)
    sharp = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    radius = np.full((48, 48), 3.0, np.float32)
    blurry, target, label = degrade(sharp, radius, CameraPlan(psf=PsfShape("disk")), margin_px=6)
    assert blurry.shape == target.shape == (36, 36, 3) and label.shape == (36, 36)
    assert np.array_equal(target, sharp[6:-6, 6:-6]) and np.all(label == 3.0)
    linear = srgb_to_linear(sharp / 255.0)
    import cv2

    oracle = cv2.filter2D(linear, -1, disk_kernel(3.0), borderType=cv2.BORDER_REPLICATE)[6:-6, 6:-6]
    expected = np.clip(np.rint(linear_to_srgb(oracle) * 255), 0, 255)
    assert np.abs(blurry.astype(int) - expected).max() <= 1


def test_layers_set_the_label_under_their_silhouette():
    rng = np.random.default_rng(5)
    background, layer_photo = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    plan = CameraPlan(layers=(Layer(photo_index=0, radius_px=0.0, area=0.4, mask_seed=9),))
    radius = np.full((64, 64), 4.0, np.float32)
    blurry, target, label = degrade(background, radius, plan, (layer_photo,))
    covered = random_mask(64, 64, 0.4, np.random.default_rng(9)) > 0.5
    assert np.all(label[covered] == 0) and np.all(label[~covered] == 4.0)
    # The in-focus foreground is delivered sharp where it fully covers the frame.
    solid = random_mask(64, 64, 0.4, np.random.default_rng(9)) > 0.999
    assert np.abs(blurry[solid].astype(int) - target[solid].astype(int)).max() <= 1


def test_highlights_are_clipped_in_the_target_and_spread_in_the_blur():
    sharp = np.zeros((41, 41, 3), np.uint8)
    sharp[20, 20] = 255
    radius = np.full((41, 41), 4.0, np.float32)
    dim, _, _ = degrade(sharp, radius, CameraPlan())
    bright, target, _ = degrade(sharp, radius, CameraPlan(highlight_gain=4.0))
    assert target[20, 20, 0] == 255 and bright[20, 17, 0] > dim[20, 17, 0]


def test_draws_are_reproducible_and_cover_every_stage():
    plans = [draw_camera(np.random.default_rng(i), photo_count=10) for i in range(300)]
    assert plans[7] == draw_camera(np.random.default_rng(7), photo_count=10)
    assert {p.psf.kind for p in plans} == set(SHAPES)
    assert any(p.layers for p in plans) and any(p.highlight_gain for p in plans)
    assert any(p.shot_variance for p in plans) and any(p.srgb_noise_sigma_levels for p in plans)
    assert any(p.jpeg_quality for p in plans)
    clean = [p for p in plans if p.shot_variance is None and p.srgb_noise_sigma_levels is None]
    assert 0.2 < len(clean) / len(plans) < 0.4  # clean samples stay in the mix


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("camera") / "images"
    make_images(folder, 6, size=(80, 70))
    return folder


def test_camera_batches_are_a_function_of_seed_and_step(images):
    settings = SynthSettings(64, 60, seed=0)
    photos = PhotoSet(images, "train", settings, lazy=True, pipeline="camera")
    batches = OnTheFlyBatches(photos, 32, 4, augmented_fraction=0.5, seed=3, length=5)
    again = OnTheFlyBatches(PhotoSet(images, "train", settings, lazy=True, pipeline="camera"), 32, 4, 0.5, 3, 5)
    for first, second in zip(batches[2], again[2]):
        assert first.shape[-2:] == (32, 32) and np.array_equal(first.numpy(), second.numpy())


def test_the_paper_pipeline_is_kept_selectable(images):
    with pytest.raises(ValueError, match="pipeline"):
        PhotoSet(images, "train", SynthSettings(64, 60), pipeline="unknown")


def test_validation_degradations_change_only_the_blurry_image(images):
    photos = PhotoSet(images, "val", SynthSettings(64, 60, seed=0))
    clean = validation_crops(photos, 2, seed=0, estimated=False)
    noisy = validation_crops(photos, 2, seed=0, estimated=False, degradation="noise5")
    assert np.array_equal(clean[0].sharp, noisy[0].sharp) and not np.array_equal(clean[0].blurry, noisy[0].blurry)
    assert np.array_equal(noisy[1].blurry, validation_crops(photos, 2, 0, False, degradation="noise5")[1].blurry)
    with pytest.raises(ValueError, match="unknown validation degradation"):
        degrade_delivered(clean[0].blurry, "fog", np.random.default_rng(0))


def test_margin_covers_the_widest_psf():
    widest = max(psf_kernel(PsfShape(kind=k, soft_edge_px=CAMERA_RANGES.soft_edge_px[1]), 6.0).shape[0] for k in SHAPES)
    assert widest // 2 <= CAMERA_MARGIN_PX
