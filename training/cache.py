"""`svbr synth`: turn a folder of sharp images into cached training samples.

No torch here: calibration reads the same cache.

Layout of a cache directory::

    CACHE/manifest.json            settings + the train/val split by source image
    CACHE/train/<image>_m<k>.npz   one sample: sharp, blurry, true_map, augmented_map
    CACHE/val/<image>_m<k>.npz

Images are stored RGB uint8 (the network's channel order); maps are float16
radii in pixels (every level is exact in float16). A sample is written to a
temporary name and renamed, so an interrupted run leaves no torn files and a
rerun skips what is done.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.pool
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from runtime.arguments import add_output, add_size
from runtime.io import IMAGE_SUFFIXES, image_suffix_list, list_images  # noqa: F401 - IMAGE_SUFFIXES re-exported
from training.augment import propagate
from training.synthesis import MAP_FAMILIES, MAPS_PER_IMAGE, blur, sample_blur_maps

VALIDATION_FRACTION = 0.2
AUGMENT_METHODS = ("matting", "domain_transform")


@dataclass(frozen=True)
class SynthSettings:
    height: int = 360
    width: int = 340
    seed: int = 0
    maps_per_image: int = MAPS_PER_IMAGE


@dataclass(frozen=True)
class Sample:
    """One cached training sample; maps are radii in px, images RGB uint8 H×W×3."""

    sharp: np.ndarray
    blurry: np.ndarray
    true_map: np.ndarray
    augmented_map: np.ndarray
    augment_method: str


def find_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted; a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    images = list_images(folder, recursive=True)
    if not images:
        raise ValueError(f"no images ({image_suffix_list()}) found in {folder}")
    return images


def split_by_image(images: list[Path], seed: int) -> dict[str, list[Path]]:
    """80/20 split by source image, deterministic by seed (never split one image's samples)."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = max(1, int(round(VALIDATION_FRACTION * len(images)))) if len(images) > 1 else 0
    val = sorted(images[i] for i in order[:n_val])
    train = sorted(images[i] for i in order[n_val:])
    return {"train": train, "val": val}


def load_sharp_rgb(path: Path, height: int, width: int) -> np.ndarray | None:
    """Read, scale to cover height×width (area filter), centre-crop; RGB uint8, or None if unreadable."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    h, w = bgr.shape[:2]
    scale = max(height / h, width / w)
    new_size = (max(width, round(w * scale)), max(height, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(bgr, new_size, interpolation=interpolation)
    top = (resized.shape[0] - height) // 2
    left = (resized.shape[1] - width) // 2
    return cv2.cvtColor(resized[top : top + height, left : left + width], cv2.COLOR_BGR2RGB)


def chosen_map_indices(rng: np.random.Generator, maps_per_image: int) -> np.ndarray:
    """Which of the 39 maps to keep: all, or a subset spread evenly over the 13 families."""
    if maps_per_image >= MAPS_PER_IMAGE:
        return np.arange(MAPS_PER_IMAGE)
    n_families, draws = len(MAP_FAMILIES), MAPS_PER_IMAGE // len(MAP_FAMILIES)
    draw_order = np.argsort(rng.random((n_families, draws)), axis=1)  # per family, a shuffled draw order
    picks = []
    for r in range(draws):  # round r: every family once, in a random order
        for family in rng.permutation(n_families):
            picks.append(family * draws + draw_order[family, r])
    return np.sort(np.array(picks[:maps_per_image]))


def sample_name(image: Path, map_index: int) -> str:
    return f"{image.parent.name}_{image.stem}_m{map_index:02d}.npz"


def _make_samples(job: tuple[str, Path, int, SynthSettings, Path]) -> tuple[str, int, str | None]:
    """Worker: all samples of one source image. Returns (image, samples written, error)."""
    split, image, image_index, settings, out_dir = job
    rng = np.random.default_rng([settings.seed, image_index])
    maps = sample_blur_maps(settings.height, settings.width, rng)
    picks = chosen_map_indices(rng, settings.maps_per_image)
    todo = [k for k in picks if not (out_dir / split / sample_name(image, k)).exists()]
    if not todo:
        return str(image), 0, None
    sharp = load_sharp_rgb(image, settings.height, settings.width)
    if sharp is None:
        return str(image), 0, "unreadable image"
    for k in todo:
        blurry = blur(sharp, maps[k])
        method = AUGMENT_METHODS[k % 2]  # half matting, half domain transform
        augmented = propagate(blurry, maps[k], method=method)
        target = out_dir / split / sample_name(image, k)
        tmp = target.with_name(target.stem + ".tmp.npz")
        np.savez(
            tmp,
            sharp=sharp,
            blurry=blurry,
            true_map=maps[k].astype(np.float16),
            augmented_map=augmented.astype(np.float16),
            augment_method=method,
        )
        tmp.replace(target)
    return str(image), len(todo), None


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core; OpenCV's own threads would oversubscribe


@contextlib.contextmanager
def _worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool | None]:
    """A process pool for ``workers`` > 1, else None (work in this process).

    Workers are spawned, not forked: a fork of a process whose OpenMP or
    ONNX Runtime threads hold locks (a test session, a notebook) can hang.
    """
    if workers <= 1:
        yield None
        return
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
        yield pool


SPLITS = ("train", "val")


def synthesize(
    images_dir: Path, out_dir: Path, settings: SynthSettings, workers: int = 1, splits: tuple[str, ...] = SPLITS
) -> dict:
    """Build (or complete) a cache, or only some of its splits; returns a summary dict.

    The split is always made over all the images; ``splits`` only chooses which
    splits get samples (``("val",)``: an evaluation cache in minutes, since
    training blurs its crops on the fly and needs no cache).
    """
    unknown = set(splits) - set(SPLITS)
    if unknown or not splits:
        raise ValueError(f"splits must be a non-empty subset of {SPLITS}, got {splits}")
    images_dir = Path(images_dir)
    images = find_images(images_dir)
    out_dir = Path(out_dir)
    split = split_by_image(images, settings.seed)
    manifest_path = out_dir / "manifest.json"
    # Paths relative to the image folder, so the same folder reached another way matches.
    manifest = {
        "settings": asdict(settings),
        "images_dir": str(images_dir),
        "split": {name: [p.relative_to(images_dir).as_posix() for p in paths] for name, paths in split.items()},
    }
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        if previous["settings"] != manifest["settings"] or previous["split"] != manifest["split"]:
            raise ValueError(
                f"{out_dir} holds a cache made with other settings or images; use another -o/--output or delete it"
            )
    for name in split:
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1))

    index_of = {p: i for i, p in enumerate(images)}
    expected = {name: len(paths) * settings.maps_per_image for name, paths in split.items()}
    counts = {name: len(list((out_dir / name).glob("*_m??.npz"))) for name in split}
    jobs = [
        (name, p, index_of[p], settings, out_dir)
        for name, paths in split.items()
        for p in paths
        if name in splits and counts[name] < expected[name]
    ]  # a complete split needs no look at its images
    written, failures, start = 0, [], time.perf_counter()
    with _worker_pool(workers) as pool:
        results = pool.imap_unordered(_make_samples, jobs) if pool else map(_make_samples, jobs)
        for image, count, error in tqdm(results, total=len(jobs), unit="image", desc="synth", file=sys.stderr):
            written += count
            if error:
                failures.append(image)
                tqdm.write(f"skipped {image}: {error}", file=sys.stderr)
    seconds = time.perf_counter() - start
    return {
        "images": len(images),
        "train_images": len(split["train"]),
        "val_images": len(split["val"]),
        "skipped_images": failures,
        "samples_written": written,
        "samples_total": {name: len(list((out_dir / name).glob("*_m??.npz"))) for name in split},
        "samples_expected": expected,
        "seconds": round(seconds, 1),
        "samples_per_minute": round(60 * written / seconds, 1) if written else None,
    }


def list_samples(cache_dir: Path, split: str) -> list[Path]:
    """Sample files of one split; a clear error if the cache is missing or empty."""
    folder = Path(cache_dir) / split
    files = sorted(folder.glob("*_m??.npz"))
    if not files:
        raise FileNotFoundError(f"no {split} samples in {folder}: run `svbr synth` first")
    return files


def read_sample(path: Path) -> Sample:
    with np.load(path) as data:
        return Sample(
            sharp=data["sharp"],
            blurry=data["blurry"],
            true_map=data["true_map"].astype(np.float32),
            augmented_map=data["augmented_map"].astype(np.float32),
            augment_method=str(data["augment_method"]),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svbr synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of sharp images")
    add_output(parser, dest="out", type=Path, required=True, help="cache directory to create or complete")
    add_size(parser, default=(340, 360), help="sample size, width x height (default 340x360)")
    parser.add_argument(
        "--maps-per-image",
        type=int,
        default=MAPS_PER_IMAGE,
        help=f"blur maps kept per image, spread over the families (default all {MAPS_PER_IMAGE})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, multiprocessing.cpu_count()),
        help="worker processes (default: one per core)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the maps (default 0)")
    parser.add_argument(
        "--split",
        choices=("both", *SPLITS),
        default="both",
        help="which split gets samples (default both; `val` makes an evaluation cache)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.maps_per_image <= MAPS_PER_IMAGE:
        parser.error(f"--maps-per-image must be 1..{MAPS_PER_IMAGE}")
    settings = SynthSettings(
        height=args.size[1], width=args.size[0], seed=args.seed, maps_per_image=args.maps_per_image
    )
    try:
        splits = SPLITS if args.split == "both" else (args.split,)
        summary = synthesize(args.images, args.out, settings, workers=args.workers, splits=splits)
    except (FileNotFoundError, ValueError) as error:
        print(f"svbr synth: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    return 0
