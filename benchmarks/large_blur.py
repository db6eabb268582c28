"""Defocus beyond 6 px (issue 19): estimator calibration per pyramid level, dense-map error and deblurring quality.

    python -m benchmarks.large_blur                                   # calibration, dense, quality (~15 min, 1 core)
    python -m benchmarks.large_blur --parts quality --photos 11       # only the quality table
    python -m benchmarks.large_blur --parts fit                       # re-fit runtime.estimate.PYRAMID_CALIBRATION

Only validation photos are measured (``training.cache.split_by_image(..., seed=0)["val"]``, photos the
training never saw; ``fit`` uses training photos only), at 480×640 (``benchmarks.estimate.load``). Large
blur is made with the package's disk PSF at any radius (``runtime.defocus.blur_large``, radii in 0.25 px
steps). Fields of 4-18 px: the 13 map families of ``training.synthesis.draw_map`` (0-6 px) mapped linearly
onto 4-18 px (``large_field``), one family per photo in turn. Parts:

* ``fit``: per pyramid level, the regressor's median reading under uniform blur (training photos) →
  ``runtime.estimate.PYRAMID_CALIBRATION`` (printed, to paste).
* ``calibration``: uniform blur 0-24 px; per level the median reading in px of the photo (calibrated),
  and the final estimate (``max_radius_px`` 48 and 6) with its MAE.
* ``dense``: MAE of the estimated map on the 4-18 px fields (48 vs 6), and on the ordinary 0-6 px family
  maps, where the pyramid must not hurt (share of photos whose map is bit-identical to the single-level one).
* ``quality``: PSNR/SSIM of the blurry photo and of ``Deblurrer`` with the true map and with no map,
  ``max_radius_px`` 48 (the pyramid) and 6 (a single pass, radii clipped: the old behaviour).

Writes ``large_blur.json`` and ``large_blur.md`` to ``-o/--output`` (default ``reports/large_blur``); parts
accumulate across runs. Single-threaded (OpenCV, ONNX Runtime), so it can run beside a training job.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.estimate import load, map_errors, mean_errors, validation_photos  # noqa: E402
from runtime.arguments import add_output
from runtime.defocus import blur_large  # noqa: E402
from runtime.estimate import estimate_blur_map  # noqa: E402

PARTS = ("calibration", "dense", "quality")
EXTRA_PARTS = ("fit",)
FIELD_RANGE_PX = (4.0, 18.0)
CALIBRATION_RADII = tuple(range(0, 25, 2))
FIT_RADII = (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56)
LEVELS = (0, 1, 2, 3)
DEFAULT_OUT = Path("reports/large_blur")
#: ``max_radius_px`` of the runs compared: the pyramid (the default) and the single pass (radii clipped to 6 px).
PYRAMID, SINGLE = 48.0, 6.0


def large_field(
    family: str,
    height: int,
    width: int,
    rng: np.random.Generator,
    low: float = FIELD_RANGE_PX[0],
    high: float = FIELD_RANGE_PX[1],
) -> np.ndarray:
    """A ``training.synthesis`` family map (0-6 px) mapped linearly onto [low, high] px: float32 H×W."""
    from training.synthesis import draw_map

    base = draw_map(family, height, width, rng)
    return (np.float32(low) + np.float32((high - low) / 6.0) * base).astype(np.float32)


def estimate(rgb: np.ndarray, max_radius_px: float) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return estimate_blur_map(rgb, channel_order="rgb", max_radius_px=max_radius_px)


def uniform(rgb: np.ndarray, radius: float) -> np.ndarray:
    return rgb if radius == 0 else blur_large(rgb, np.full(rgb.shape[:2], radius, np.float32))


def level_readings(rgb: np.ndarray, level: int) -> np.ndarray | None:
    """Regressor readings (px of level ``level``) at that level's reliable edges."""
    from runtime.estimate import level_edge_readings

    readings = level_edge_readings(rgb.astype(np.float32) / np.float32(255), level)
    return None if readings is None else readings[2]


# --- parts ------------------------------------------------------------------------


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    """Fit ``runtime.estimate.PYRAMID_CALIBRATION`` on TRAINING-split photos (never the validation photos)."""
    from training.cache import find_images, split_by_image

    train = split_by_image(find_images(args.images), seed=0)["train"]
    picks = np.linspace(0, len(train) - 1, args.fit_photos).round().astype(int)
    photos = [load(train[i]) for i in picks]
    medians: dict[int, dict[int, float]] = {level: {} for level in LEVELS[1:]}
    for radius in FIT_RADII:
        pooled: dict[int, list[np.ndarray]] = {level: [] for level in LEVELS[1:]}
        for rgb in photos:
            blurry = uniform(rgb, radius)
            for level in LEVELS[1:]:
                if radius > 6.25 * 2**level:  # well past the level's saturation
                    continue
                values = level_readings(blurry, level)
                if values is not None:
                    pooled[level].append(values)
        for level, values in pooled.items():
            if values:
                medians[level][radius] = float(np.median(np.concatenate(values)))
        print(
            f"  fit r={radius}: " + ", ".join(f"level {k} {v[radius]:.3f}" for k, v in medians.items() if radius in v),
            flush=True,
        )
    table: dict[int, tuple[list[float], list[float]]] = {}
    for level, by_radius in medians.items():
        radii = sorted(by_radius)
        raw = np.maximum.accumulate(np.array([by_radius[r] for r in radii]))
        raw = raw + np.arange(raw.size) * 1e-3  # strictly increasing for interpolation
        table[level] = ([round(float(v), 3) for v in raw], [float(r) for r in radii])
    print("  paste into runtime/estimate.py:")
    print("  PYRAMID_CALIBRATION: dict[int, tuple[tuple[float, ...], tuple[float, ...]]] = {")
    for level, (raw, radius) in table.items():
        print(
            f"      {level}: (({', '.join(f'{v:g}' for v in raw)}),\n"
            f"          ({', '.join(f'{v:g}' for v in radius)})),"
        )
    print("  }")
    return {
        "training_photos": len(photos),
        "medians": {str(k): v for k, v in medians.items()},
        "PYRAMID_CALIBRATION": {str(k): v for k, v in table.items()},
    }


def run_calibration(args: argparse.Namespace) -> dict[str, Any]:
    from runtime.estimate import calibrate_level_px

    photos = [load(p) for p in validation_photos(args.images, args.photos)]
    rows = []
    for radius in CALIBRATION_RADII:
        per_level: dict[int, list[np.ndarray]] = {level: [] for level in LEVELS}
        final: dict[float, list[np.ndarray]] = {PYRAMID: [], SINGLE: []}
        for rgb in photos:
            blurry = uniform(rgb, radius)
            for level in LEVELS:
                values = level_readings(blurry, level)
                if values is not None:
                    per_level[level].append(values if level == 0 else calibrate_level_px(values, level))
            for limit in final:
                final[limit].append(estimate(blurry, limit))
        row: dict[str, Any] = {"radius": radius, "levels": {}}
        for level, values in per_level.items():
            pooled = np.concatenate(values) if values else np.zeros(0)
            row["levels"][str(level)] = (
                {
                    "median": float(np.median(pooled)),
                    "p25": float(np.percentile(pooled, 25)),
                    "p75": float(np.percentile(pooled, 75)),
                    "edges": int(pooled.size),
                }
                if pooled.size
                else None
            )
        for limit, maps in final.items():
            pooled = np.concatenate([m[::4, ::4].ravel() for m in maps])
            row[f"estimate_{limit:g}"] = {
                "median": float(np.median(pooled)),
                "mae": float(np.mean([np.abs(m - radius).mean() for m in maps])),
            }
        rows.append(row)
        print(
            f"  calibration r={radius}: "
            + ", ".join(f"L{k} {v['median']:.2f}" for k, v in row["levels"].items() if v)
            + f"; estimate {row['estimate_48']['median']:.2f} (MAE {row['estimate_48']['mae']:.2f})",
            flush=True,
        )
    return {"photos": len(photos), "rows": rows}


def run_dense(args: argparse.Namespace) -> dict[str, Any]:
    from training.synthesis import MAP_FAMILIES, draw_map

    rng = np.random.default_rng(7)
    large: dict[float, list[dict[str, float]]] = {PYRAMID: [], SINGLE: []}
    small: dict[float, list[dict[str, float]]] = {PYRAMID: [], SINGLE: []}
    identical = 0
    photos = validation_photos(args.images, args.photos)
    for index, path in enumerate(photos):
        rgb = load(path)
        family = MAP_FAMILIES[index % len(MAP_FAMILIES)]
        true = large_field(family, *rgb.shape[:2], rng)
        blurry = blur_large(rgb, true)
        for limit in large:
            large[limit].append(map_errors(estimate(blurry, limit), true))
        true_small = draw_map(MAP_FAMILIES[(index + 5) % len(MAP_FAMILIES)], *rgb.shape[:2], rng)
        blurry_small = blur_large(rgb, true_small)
        maps = {limit: estimate(blurry_small, limit) for limit in small}
        for limit, estimated in maps.items():
            small[limit].append(map_errors(estimated, true_small))
        identical += int(np.array_equal(maps[PYRAMID], maps[SINGLE]))
        print(
            f"  dense {path.name} ({family}): MAE 4-18 px {large[PYRAMID][-1]['mae']:.2f} "
            f"(single level {large[SINGLE][-1]['mae']:.2f}); 0-6 px {small[PYRAMID][-1]['mae']:.2f} "
            f"(single level {small[SINGLE][-1]['mae']:.2f})",
            flush=True,
        )
    return {
        "photos": len(photos),
        "fields_4_18": {f"{k:g}": mean_errors(v) for k, v in large.items()},
        "families_0_6": {f"{k:g}": mean_errors(v) for k, v in small.items()},
        "families_0_6_identical": identical,
    }


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    from runtime.deblurrer import BUNDLED_MODEL_PATH, Deblurrer
    from runtime.metrics import psnr, ssim
    from training.synthesis import MAP_FAMILIES

    model = args.model or BUNDLED_MODEL_PATH
    deblurrers = {
        limit: Deblurrer(model, backend="onnxruntime-cpu", tile=512, max_radius_px=limit, threads=1)
        for limit in (PYRAMID, SINGLE)
    }
    rng = np.random.default_rng(11)
    names = [
        "blurry",
        "true map, pyramid (max_radius_px 48)",
        "true map, single pass (radii clipped to 6 px)",
        "no map, pyramid (max_radius_px 48)",
        "no map, single pass (max_radius_px 6)",
    ]
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    map_rows: dict[float, list[dict[str, float]]] = {PYRAMID: [], SINGLE: []}
    seconds: dict[str, list[float]] = {name: [] for name in names[1:]}
    photos = validation_photos(args.images, args.photos, offset=args.offset)
    for index, path in enumerate(photos):
        sharp = load(path)
        true = large_field(MAP_FAMILIES[index % len(MAP_FAMILIES)], *sharp.shape[:2], rng)
        blurry = blur_large(sharp, true)
        outputs = {"blurry": blurry}
        for name, limit, radius in (
            (names[1], PYRAMID, true),
            (names[2], SINGLE, true),
            (names[3], PYRAMID, None),
            (names[4], SINGLE, None),
        ):
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                outputs[name], used = deblurrers[limit].deblur(blurry, radius, channel_order="rgb", return_map=True)
            seconds[name].append(time.perf_counter() - start)
            if radius is None:
                map_rows[limit].append(map_errors(used, true))
        for name, output in outputs.items():
            scores[name].append((psnr(sharp, output), ssim(sharp, output)))
        print(
            f"  quality {path.name}: "
            + ", ".join(f"{n.split(',')[0] if n == 'blurry' else n[:22]} {scores[n][-1][0]:.2f}" for n in names),
            flush=True,
        )
    for deblurrer in deblurrers.values():
        deblurrer.close()
    rows = {
        name: {"psnr": float(np.mean([s[0] for s in v])), "ssim": float(np.mean([s[1] for s in v]))}
        for name, v in scores.items()
    }
    return {
        "model": str(model),
        "photos": len(photos),
        "size": "480×640 (H×W)",
        "field_px": list(FIELD_RANGE_PX),
        "rows": rows,
        "seconds_median": {name: float(np.median(v)) for name, v in seconds.items()},
        "estimated_map_errors": {f"{k:g}": mean_errors(v) for k, v in map_rows.items()},
    }


# --- report -----------------------------------------------------------------------


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# Defocus beyond 6 px: estimator and blur-adaptive pyramid on validation photos", ""]

    def command(part: str) -> list[str]:
        return [f"Command: `{report[part]['command']}`", ""] if "command" in report[part] else []

    if "quality" in report:
        q = report["quality"]
        blurry = q["rows"]["blurry"]
        lines += [
            f"## Deblurring, {q['photos']} held-out photos {q['size']}, radius fields "
            f"{q['field_px'][0]:g}–{q['field_px'][1]:g} px (model {Path(q['model']).name})",
            "",
            *command("quality"),
            "| input | PSNR (dB) | SSIM | vs blurry | time (median) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, m in q["rows"].items():
            delta = (
                "" if name == "blurry" else f"{m['psnr'] - blurry['psnr']:+.2f} dB / {m['ssim'] - blurry['ssim']:+.3f}"
            )
            time_text = f"{q['seconds_median'][name]:.1f} s" if name in q["seconds_median"] else ""
            lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {delta} | {time_text} |")
        errors = q["estimated_map_errors"]
        lines += [
            "",
            "Estimated maps (no map rows): MAE "
            + ", ".join(f"{e['mae']:.2f} px (max_radius_px {k})" for k, e in errors.items())
            + ".",
            "",
        ]
    if "calibration" in report:
        c = report["calibration"]
        lines += [
            f"## Estimator calibration per pyramid level ({c['photos']} validation photos, uniform disk blur)",
            "",
            *command("calibration"),
            "Median per-edge reading in px of the photo (level k: calibrated by `PYRAMID_CALIBRATION`), "
            "and the final dense estimate.",
            "",
            "| true r (px) | full size | level ½ | level ¼ | level ⅛ | estimate (48): median / MAE | "
            "estimate (6): median / MAE |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in c["rows"]:
            cells = [f"{row['levels'][str(k)]['median']:.2f}" if row["levels"].get(str(k)) else "–" for k in LEVELS]
            e48, e6 = row["estimate_48"], row["estimate_6"]
            lines.append(
                f"| {row['radius']} | {' | '.join(cells)} | {e48['median']:.2f} / {e48['mae']:.2f} | "
                f"{e6['median']:.2f} / {e6['mae']:.2f} |"
            )
        lines.append("")
    if "dense" in report:
        d = report["dense"]
        lines += [
            f"## Dense estimated maps ({d['photos']} validation photos)",
            "",
            *command("dense"),
            "| maps | max_radius_px | MAE (px) | bias (px) | within ±0.5 px |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for label, key in (("4–18 px fields", "fields_4_18"), ("0–6 px families", "families_0_6")):
            for limit, e in d[key].items():
                lines.append(
                    f"| {label} | {limit} | {e['mae']:.2f} | {e['bias']:+.2f} | {100 * e['within_0.5']:.0f} % |"
                )
        lines += [
            "",
            f"0–6 px families: the map with max_radius_px 48 is bit-identical to the single-level map on "
            f"{d['families_0_6_identical']} of {d['photos']} photos.",
            "",
        ]
    if "fit" in report:
        f = report["fit"]
        lines += [
            f"## Fit of `PYRAMID_CALIBRATION` ({f['training_photos']} training photos)",
            "",
            *command("fit"),
            "```",
            json.dumps(f["PYRAMID_CALIBRATION"]),
            "```",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.large_blur", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images",
        type=Path,
        default=Path("../shared/datasets/sharp-train"),
        help="folder of sharp photos; only its validation split (seed 0) is measured",
    )
    parser.add_argument("--photos", type=int, default=11, help="validation photos per part (default 11)")
    parser.add_argument("--offset", type=int, default=0, help="shift the quality part's photo picks")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS + EXTRA_PARTS)}"
    )
    parser.add_argument("--fit-photos", type=int, default=16, help="training photos for --parts fit (default 16)")
    parser.add_argument("--model", type=Path, help="ONNX model for quality (default: the bundled model)")
    add_output(parser, dest="out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS) - set(EXTRA_PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS + EXTRA_PARTS)}")
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "large_blur.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
    command = "python -m benchmarks.large_blur " + " ".join(argv if argv is not None else sys.argv[1:])
    runners = {"fit": run_fit, "calibration": run_calibration, "dense": run_dense, "quality": run_quality}
    for part in parts:
        print(f"large-blur benchmark: {part}", flush=True)
        start = time.perf_counter()
        report[part] = runners[part](args)
        report[part]["benchmark_seconds"] = time.perf_counter() - start
        report[part]["command"] = command.strip()
        report_path.write_text(json.dumps(report, indent=1))
    (args.out / "large_blur.md").write_text(to_markdown(report))
    print(f"wrote {report_path} and {args.out / 'large_blur.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
