"""`svbr eval --images DIR`: a Table-1-style report on the validation split.

Rows: the blurry input, the classical layered Wiener baseline and SVBR-Net;
columns: mean PSNR / SSIM with the true blur maps, with the augmented maps
(the training-time simulation of an estimator: true map kept at edges,
propagated) and with the map estimated by the runtime from the blurry image
alone (``runtime.estimate_blur_map``, what ``svbr deblur`` without
``--blur-map`` uses), plus a colour check — the mean absolute shift of the
per-channel image means, in 8-bit levels — because SSIM alone hides colour
drift (SPEC §4). Outputs are rounded to 8 bits, as a deployed model's are.

A second table measures robustness: the same samples with the true maps after
the delivered blurry image got Gaussian noise of σ = 2 or 5 levels or JPEG
quality 80 (``training.photos.VALIDATION_DEGRADATIONS``, seeded per sample),
as a camera would deliver them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from runtime.arguments import add_model, add_output, add_size
from runtime.metrics import psnr, ssim
from training.augment import runtime_estimate  # noqa: F401 (re-exported: svbr eval's "estimated" column)
from training.baselines import choose_regularisation, layered_deconvolution
from training.cache import SynthSettings, list_samples, read_sample, synthesize
from training.dataset import to_network_inputs
from training.model import PRETRAINED_PATH, SVBRNet, load_model
from training.photos import VALIDATION_DEGRADATIONS, degrade_delivered

MAP_KINDS = ("true", "augmented", "estimated")
TUNING_SAMPLES = 16


def colour_shift(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean over channels of |mean(test_c) − mean(reference_c)|, in 8-bit levels."""
    return float(np.abs(test.reshape(-1, 3).mean(0).astype(np.float64) - reference.reshape(-1, 3).mean(0)).mean())


@torch.no_grad()
def run_network(model: SVBRNet, blurry_rgb: np.ndarray, radius_px: np.ndarray) -> np.ndarray:
    """Full-frame pass; crops to a multiple of 4 would lose pixels, so reflect-pad instead."""
    height, width = blurry_rgb.shape[:2]
    pad_h, pad_w = -height % 4, -width % 4
    blurry = np.pad(blurry_rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    radius = np.pad(radius_px, ((0, pad_h), (0, pad_w)), mode="reflect")
    image, blur_map = to_network_inputs(blurry, radius)
    output = model(image[None], blur_map[None])[0, :, :height, :width]
    return np.clip(np.rint(output.permute(1, 2, 0).numpy() * 255.0), 0, 255).astype(np.uint8)


def spread(files: list[Path], count: int | None) -> list[Path]:
    """At most ``count`` files evenly spread over the list (all when count is None)."""
    if count is None or count >= len(files):
        return files
    return [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]


#: A method under test: (blurry RGB uint8 H×W×3, radius map px H×W) -> restored RGB uint8 H×W×3.
Method = Callable[[np.ndarray, np.ndarray], np.ndarray]


def tune_classical(cache: Path, count: int = TUNING_SAMPLES) -> tuple[float, dict[float, float]]:
    """The classical baseline's Wiener regularisation, chosen on ``count`` training samples (true maps).

    The samples are the cache's training split, or, for an evaluation cache
    that has only the validation split (``svbr synth --split val``), ``count``
    samples blurred on the fly from the training photos the manifest names, as
    ``svbr train`` makes them. Never validation samples: the baseline must not
    be tuned on what it is scored on.

    Returns:
        (best value, {value: mean PSNR in dB}), as :func:`choose_regularisation`.
    """
    try:
        tuning = [read_sample(f) for f in spread(list_samples(cache, "train"), count)]
        return choose_regularisation((s.blurry, s.true_map, s.sharp) for s in tuning)
    except FileNotFoundError:
        pass
    from training.photos import PhotoSet, validation_crops

    manifest = json.loads((Path(cache) / "manifest.json").read_text())
    photos = PhotoSet(Path(manifest["images_dir"]), "train", SynthSettings(**manifest["settings"]), lazy=True)
    crops = validation_crops(photos, count, seed=manifest["settings"]["seed"], estimated=False)
    return choose_regularisation((c.blurry, c.true_radius_px, c.sharp) for c in crops)


def score_methods(
    files: list[Path],
    methods: dict[str, Method],
    quiet: bool = False,
    desc: str = "eval",
    map_kinds: tuple[str, ...] = ("true", "augmented"),
    degradations: tuple[str, ...] = (),
) -> dict[str, dict[str, float]]:
    """Mean scores of every method on the given samples, with each kind of map in ``map_kinds``.

    Map kinds: ``"true"``, ``"augmented"`` (the sample's estimated-style map) and
    ``"estimated"`` (the runtime's estimate from the blurry image, ``svbr eval``'s
    extra column; off by default because it costs an estimate per sample).

    ``degradations`` (``VALIDATION_DEGRADATIONS`` names) add, per name, a score with
    the true map on the blurry image so degraded (``"<name>_psnr"``, ``"<name>_ssim"``).

    Samples whose blurry image equals the sharp one (a map with no blur above
    0.5 px, which the disk model leaves untouched) are skipped: there is
    nothing to deblur, and their infinite PSNR would swamp every mean. Their
    number is reported as ``{"skipped_blur_free": {"count": N}}``.

    Returns:
        ``{method: {"<map kind>_psnr" (dB), "<map kind>_ssim", "<map kind>_colour_shift" (8-bit levels): mean}}``
        for the map kinds given.
    """
    scores: dict[str, dict[str, list[float]]] = {}
    skipped = 0
    for sample_index, path in enumerate(tqdm(files, desc=desc, unit="sample", disable=quiet, file=sys.stderr)):
        sample = read_sample(path)
        if np.array_equal(sample.blurry, sample.sharp):
            skipped += 1
            continue
        maps = {"true": sample.true_map, "augmented": sample.augmented_map}
        if "estimated" in map_kinds:
            maps["estimated"] = runtime_estimate(sample.blurry)
        for map_kind in map_kinds:
            radius = maps[map_kind]
            for method, run in methods.items():
                output = run(sample.blurry, radius)
                bucket = scores.setdefault(method, {})
                bucket.setdefault(f"{map_kind}_psnr", []).append(psnr(sample.sharp, output))
                bucket.setdefault(f"{map_kind}_ssim", []).append(ssim(sample.sharp, output))
                bucket.setdefault(f"{map_kind}_colour_shift", []).append(colour_shift(sample.sharp, output))
        for index, name in enumerate(degradations):
            degraded = degrade_delivered(sample.blurry, name, np.random.default_rng([sample_index, index]))
            for method, run in methods.items():
                output = run(degraded, sample.true_map)
                bucket = scores.setdefault(method, {})
                bucket.setdefault(f"{name}_psnr", []).append(psnr(sample.sharp, output))
                bucket.setdefault(f"{name}_ssim", []).append(ssim(sample.sharp, output))
    means = {
        method: {key: float(np.mean(values)) for key, values in metrics.items()} for method, metrics in scores.items()
    }
    return {**means, "skipped_blur_free": {"count": skipped}}


def evaluate(
    cache: Path,
    model: SVBRNet,
    limit: int | None = None,
    quiet: bool = False,
    degradations: tuple[str, ...] = tuple(VALIDATION_DEGRADATIONS),
) -> dict[str, Any]:
    regularisation, tuning_scores = tune_classical(cache)
    files = spread(list_samples(cache, "val"), limit)
    methods: dict[str, Method] = {
        "blurry input": lambda blurry, radius: blurry,
        "classical (layered Wiener)": lambda blurry, radius: layered_deconvolution(blurry, radius, regularisation),
        "SVBR-Net": lambda blurry, radius: run_network(model, blurry, radius),
    }
    scores = score_methods(files, methods, quiet, map_kinds=MAP_KINDS, degradations=degradations)
    skipped = scores.pop("skipped_blur_free")["count"]
    return {
        "samples": len(files) - skipped,
        "skipped_blur_free_samples": skipped,
        "classical_regularisation": regularisation,
        "classical_tuning_psnr": tuning_scores,
        "degradations": {name: VALIDATION_DEGRADATIONS[name] for name in degradations},
        "methods": scores,
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Validation split, {report['samples']} samples ({report['skipped_blur_free_samples']} without blur "
        "skipped); mean SSIM / PSNR (dB); colour shift in 8-bit levels.",
        "",
        "| method | true map | augmented map | map estimated by the runtime | colour shift (true map) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, m in report["methods"].items():
        estimated = f"{m['estimated_ssim']:.3f} / {m['estimated_psnr']:.2f}" if "estimated_ssim" in m else ""
        lines.append(
            f"| {method} | {m['true_ssim']:.3f} / {m['true_psnr']:.2f} | "
            f"{m['augmented_ssim']:.3f} / {m['augmented_psnr']:.2f} | {estimated} | "
            f"{m['true_colour_shift']:.2f} |"
        )
    lines += [
        "",
        f"Classical baseline regularisation (chosen on the training split): {report['classical_regularisation']:g}.",
    ]
    degradations = list(report.get("degradations", {}))
    if degradations:
        titles = {"noise": "Gaussian noise σ = {:g} levels", "jpeg": "JPEG quality {:g}"}
        headers = [titles[kind].format(amount) for kind, amount in report["degradations"].values()]
        lines += [
            "",
            "Robustness, true maps: the blurry image as delivered clean, with noise or compressed; "
            "mean SSIM / PSNR (dB).",
            "",
            "| method | clean | " + " | ".join(headers) + " |",
            "| --- " * (len(headers) + 2) + "|",
        ]
        for method, m in report["methods"].items():
            cells = [f"{m['true_ssim']:.3f} / {m['true_psnr']:.2f}"]
            cells += [f"{m[f'{name}_ssim']:.3f} / {m[f'{name}_psnr']:.2f}" for name in degradations]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svbr eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of sharp images (as given to svbr synth)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("cache/eval-val-360x340"),
        help="`svbr synth` cache of those images; its validation split is made or completed "
        "if needed (default: %(default)s)",
    )
    add_size(parser, default=(340, 360), help="sample size, width x height, if the cache is made (default 340x360)")
    parser.add_argument("--maps-per-image", type=int, default=1, help="maps per image if the cache is made")
    parser.add_argument("--seed", type=int, default=0)
    add_model(
        parser,
        dest="checkpoint",
        aliases=("--checkpoint",),
        type=Path,
        default=PRETRAINED_PATH,
        help="SVBR-Net checkpoint (default: the bundled weights)",
    )
    parser.add_argument("--limit", type=int, help="evaluate at most this many validation samples")
    add_output(
        parser,
        dest="out",
        type=Path,
        default=Path("reports/model"),
        help="folder for eval.md and eval.json (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes if samples must be made")
    parser.add_argument(
        "--degradations",
        default=",".join(VALIDATION_DEGRADATIONS),
        help="comma-separated robustness columns (true maps, degraded blurry image; "
        f"known: {', '.join(VALIDATION_DEGRADATIONS)}; '' for none; default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        # Only the validation split is needed (the baseline tunes on training photos, see tune_classical);
        # an existing cache keeps its own settings.
        manifest = args.cache / "manifest.json"
        settings = (
            SynthSettings(**json.loads(manifest.read_text())["settings"])
            if manifest.is_file()
            else SynthSettings(args.size[1], args.size[0], args.seed, args.maps_per_image)
        )
        synthesize(args.images, args.cache, settings, workers=args.workers, splits=("val",))
        model, metadata = load_model(args.checkpoint)
        degradations = tuple(name for name in args.degradations.split(",") if name)
        unknown = set(degradations) - set(VALIDATION_DEGRADATIONS)
        if unknown:
            raise ValueError(f"unknown --degradations {sorted(unknown)}; known: {', '.join(VALIDATION_DEGRADATIONS)}")
        report = evaluate(args.cache, model, args.limit, degradations=degradations)
    except (FileNotFoundError, ValueError) as error:
        print(f"svbr eval: error: {error}", file=sys.stderr)
        return 2
    report["checkpoint"] = str(args.checkpoint)
    report["checkpoint_step"] = metadata.get("step")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval.json").write_text(json.dumps(report, indent=1))
    markdown = to_markdown(report)
    (args.out / "eval.md").write_text(markdown)
    print(markdown)
    return 0
