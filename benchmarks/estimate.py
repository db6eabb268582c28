"""Accuracy and speed of the runtime's blur-map estimator (``runtime.estimate_blur_map``).

    python -m benchmarks.estimate --images ../shared/datasets/sharp-train            # all parts, ~10 min on 2 cores
    python -m benchmarks.estimate --parts calibration,speed --photos 8               # a subset

Only validation photos are used (``training.cache.split_by_image(..., seed=0)["val"]``,
photos the training never saw), at their native 480×640 (scaled and centre-cropped by
``load_sharp_rgb``), blurred with the package's own disk PSF model (``runtime.defocus.blur``)
and rounded to 8 bits. Parts:

* ``calibration``: uniform blur r = 0, 0.5, …, 6 px; per level the pooled pixel median,
  quartiles and MAE of the estimate, and a plot (``calibration.png``).
* ``dense``: one map of each of the 13 families (``training.synthesis.draw_map``) per photo:
  MAE, bias, share of pixels within ±0.5 px, per family; next to it the same numbers for the
  training-time "augmented" map (true radii kept at Canny edges, domain-transform propagation):
  the error of propagation alone, the floor a perfect edge measurement would reach.
* ``robustness``: the dense test under Gaussian noise σ = 1, 2, 5 levels and JPEG quality 75,
  and on 0.3 / 1.2 / 2 MP photos (2×2 and 2×3 mosaics of validation photos, so no photo is upscaled).
* ``speed``: seconds per stage for a 1.2 MP photo (median of 3 runs), and time and peak
  memory for a 24 MP photo in a fresh process.
* ``end_to_end``: PSNR/SSIM of the blurry input and of SVBR-Net (the bundled ONNX model on ONNX
  Runtime, 1 thread) with the true map and with the estimated map, on 360×340 samples
  (the ``svbr eval`` size), two family maps per photo.

Writes ``estimate.json`` and ``estimate.md`` (and ``calibration.png``) to ``-o/--output``
(default ``reports/estimate``). Single-threaded (OpenCV, ONNX Runtime), so it can run
beside a training job.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks._common import cpu_model  # noqa: E402
from runtime.arguments import add_output
from runtime.defocus import blur  # noqa: E402
from runtime.estimate import estimate_blur_map  # noqa: E402

PARTS = ("calibration", "dense", "robustness", "speed", "end_to_end")
#: ``fit`` re-fits the estimator's calibration table on training photos; not part of the default run.
EXTRA_PARTS = ("fit",)
CALIBRATION_RADII = tuple(0.5 * i for i in range(13))
PHOTO_HW = (480, 640)
END_TO_END_HW = (360, 340)
NOISE_SIGMAS = (1.0, 2.0, 5.0)
JPEG_QUALITY = 75
DEFAULT_OUT = Path("reports/estimate")


def validation_photos(images: Path, count: int, offset: int = 0) -> list[Path]:
    """``count`` validation photos spread over the split (never a training photo)."""
    from training.cache import find_images, split_by_image

    val = split_by_image(find_images(images), seed=0)["val"]
    if count > len(val):
        raise ValueError(f"only {len(val)} validation photos, asked for {count}")
    picks = np.linspace(0, len(val) - 1, count).round().astype(int)
    return [val[(i + offset) % len(val)] for i in picks]


def load(path: Path, hw: tuple[int, int] | None = None) -> np.ndarray:
    from training.cache import load_sharp_rgb

    rgb = load_sharp_rgb(path, *(hw or PHOTO_HW))
    if rgb is None:
        raise ValueError(f"cannot read {path}")
    return rgb


def estimate(rgb: np.ndarray, timings: dict | None = None, method: str = "learned") -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # no-edge / saturation notices are part of what is measured
        return estimate_blur_map(rgb, channel_order="rgb", timings=timings, method=method)


def map_errors(estimated: np.ndarray, true: np.ndarray) -> dict[str, float]:
    error = estimated.astype(np.float64) - true
    return {
        "mae": float(np.abs(error).mean()),
        "bias": float(error.mean()),
        "within_0.5": float(np.mean(np.abs(error) <= 0.5 + 1e-6)),
    }


def mean_errors(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


def degrade(blurry: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    if condition == "clean":
        return blurry
    if condition.startswith("noise"):
        sigma = float(condition.split("_")[1])
        return np.clip(np.rint(blurry + rng.normal(0.0, sigma, blurry.shape)), 0, 255).astype(np.uint8)
    if condition == "jpeg75":
        ok, data = cv2.imencode(".jpg", blurry, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    raise ValueError(condition)


# --- parts ------------------------------------------------------------------------


#: Levels of the calibration fit: r = 0.5 is skipped, since the disk PSF of radius 0.5 is a single tap (no blur).
FIT_RADII = (0.0,) + tuple(0.5 * i for i in range(2, 13))


def run_fit(args: argparse.Namespace) -> dict[str, Any]:
    """Fit ``runtime.estimate.CALIBRATION_*`` on TRAINING-split photos (never the validation photos)."""
    from runtime.estimate import raw_radius_map
    from training.cache import find_images, split_by_image

    train = split_by_image(find_images(args.images), seed=0)["train"]
    picks = np.linspace(0, len(train) - 1, args.fit_photos).round().astype(int)
    photos = [load(train[i]) for i in picks]
    raw_medians = []
    for radius in FIT_RADII:
        values = []
        for rgb in photos:
            blurry = rgb if radius == 0 else blur(rgb, np.full(rgb.shape[:2], radius, np.float32))
            raw = raw_radius_map(blurry, channel_order="rgb")
            if raw is not None:
                values.append(raw[::4, ::4].ravel())
        raw_medians.append(float(np.median(np.concatenate(values))))
        print(f"  fit r={radius:.1f}: raw median {raw_medians[-1]:.3f}", flush=True)
    increasing = np.maximum.accumulate(np.array(raw_medians))
    increasing += np.arange(increasing.size) * 1e-3  # strictly increasing for interpolation
    table = {"CALIBRATION_RAW_PX": [round(float(v), 3) for v in increasing], "CALIBRATION_RADIUS_PX": list(FIT_RADII)}
    print("  paste into runtime/estimate.py:")
    for name, values in table.items():
        print(f"  {name}: tuple[float, ...] = ({', '.join(f'{v:g}' for v in values)})")
    return {"training_photos": len(photos), "raw_medians": raw_medians, **table}


def run_calibration(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    photos = [load(p) for p in validation_photos(args.images, args.photos)]
    levels = []
    for radius in CALIBRATION_RADII:
        values, errors, medians = [], [], []
        for rgb in photos:
            blurry = rgb if radius == 0 else blur(rgb, np.full(rgb.shape[:2], radius, np.float32))
            est = estimate(blurry)
            values.append(est[::4, ::4].ravel())
            medians.append(float(np.median(est)))
            errors.append(float(np.abs(est - radius).mean()))
        pooled = np.concatenate(values)
        p10, p25, p50, p75, p90 = np.percentile(pooled, [10, 25, 50, 75, 90])
        levels.append(
            {
                "radius": radius,
                "median": float(p50),
                "p25": float(p25),
                "p75": float(p75),
                "p10": float(p10),
                "p90": float(p90),
                "mae": float(np.mean(errors)),
                "median_of_photo_medians": float(np.median(medians)),
            }
        )
        print(
            f"  calibration r={radius:.1f}: median {p50:.2f} IQR {p25:.2f}-{p75:.2f} MAE {np.mean(errors):.2f}",
            flush=True,
        )
    mid = [lv for lv in levels if 1.0 <= lv["radius"] <= 5.0]
    result = {
        "photos": len(photos),
        "levels": levels,
        "monotone": bool(all(b["median"] >= a["median"] for a, b in zip(levels, levels[1:]))),
        "within_0.5_for_1_to_5": bool(all(abs(lv["median"] - lv["radius"]) <= 0.5 for lv in mid)),
        "max_abs_median_error_1_to_5": float(max(abs(lv["median"] - lv["radius"]) for lv in mid)),
    }
    plot_calibration(levels, len(photos), out / "calibration.png")
    return result


def plot_calibration(levels: list[dict[str, float]], photos: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = np.array([lv["radius"] for lv in levels])
    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    ax.fill_between(r, r - 0.5, r + 0.5, color="0.9", label="±0.5 px")
    ax.plot(r, r, color="0.5", lw=1, label="ideal")
    ax.fill_between(
        r, [lv["p10"] for lv in levels], [lv["p90"] for lv in levels], color="C0", alpha=0.15, label="10–90 %"
    )
    ax.fill_between(
        r, [lv["p25"] for lv in levels], [lv["p75"] for lv in levels], color="C0", alpha=0.35, label="25–75 %"
    )
    ax.plot(r, [lv["median"] for lv in levels], "o-", color="C0", label="median")
    ax.set_xlabel("true disk radius (px), uniform blur")
    ax.set_ylabel("estimated radius (px)")
    ax.set_title(f"runtime.estimate_blur_map on {photos} validation photos (480×640)", fontsize=9)
    ax.set_xlim(0, 6)
    ax.set_ylim(0, 6.5)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def run_dense(args: argparse.Namespace) -> dict[str, Any]:
    from training.augment import propagate
    from training.synthesis import MAP_FAMILIES, draw_map

    rng = np.random.default_rng(1)
    families: dict[str, Any] = {}
    all_est, all_aug, all_tab = [], [], []
    for index, family in enumerate(MAP_FAMILIES):
        est_rows, aug_rows, tab_rows = [], [], []
        for path in validation_photos(args.images, args.photos, offset=index):
            rgb = load(path)
            true = draw_map(family, *rgb.shape[:2], rng)
            blurry = blur(rgb, true)
            est_rows.append(map_errors(estimate(blurry), true))
            tab_rows.append(map_errors(estimate(blurry, method="table"), true))
            aug_rows.append(map_errors(propagate(blurry, true, method="domain_transform"), true))
        families[family] = {
            "estimated": mean_errors(est_rows),
            "table": mean_errors(tab_rows),
            "augmented_dt": mean_errors(aug_rows),
        }
        all_est += est_rows
        all_tab += tab_rows
        all_aug += aug_rows
        e = families[family]["estimated"]
        print(f"  dense {family}: MAE {e['mae']:.3f} bias {e['bias']:+.3f} within {e['within_0.5']:.2f}", flush=True)
    return {
        "photos_per_family": args.photos,
        "families": families,
        "all": {"estimated": mean_errors(all_est), "table": mean_errors(all_tab), "augmented_dt": mean_errors(all_aug)},
    }


def mosaic(paths: list[Path], rows: int, cols: int) -> np.ndarray:
    tiles = [load(p) for p in paths[: rows * cols]]
    return np.vstack([np.hstack(tiles[r * cols : (r + 1) * cols]) for r in range(rows)])


def run_robustness(args: argparse.Namespace) -> dict[str, Any]:
    from training.synthesis import MAP_FAMILIES, draw_map

    count = max(2, args.photos // 4)
    conditions = ["clean"] + [f"noise_{s:g}" for s in NOISE_SIGMAS] + ["jpeg75"]
    rows: dict[str, list[dict[str, float]]] = {c: [] for c in conditions}
    rng = np.random.default_rng(2)
    for index, family in enumerate(MAP_FAMILIES):
        for path in validation_photos(args.images, count, offset=3 * index):
            rgb = load(path)
            true = draw_map(family, *rgb.shape[:2], rng)
            blurry = blur(rgb, true)
            for condition in conditions:
                rows[condition].append(map_errors(estimate(degrade(blurry, condition, rng)), true))
    result: dict[str, Any] = {"photos_per_family": count, "conditions": {c: mean_errors(r) for c, r in rows.items()}}
    for c, m in result["conditions"].items():
        print(f"  robustness {c}: MAE {m['mae']:.3f} bias {m['bias']:+.3f}", flush=True)

    sizes = {
        "0.3 MP (480×640)": (1, 1, None),
        "1.2 MP (960×1280)": (2, 2, None),
        "2 MP (1224×1632)": (2, 3, (1224, 1632)),
    }
    photos = validation_photos(args.images, 6 * 4, offset=7)
    size_rows: dict[str, Any] = {}
    for name, (r, c, crop) in sizes.items():
        errors, seconds = [], []
        for index, family in enumerate(MAP_FAMILIES):
            image = mosaic(photos[(index % 4) * 6 :], r, c)
            if crop is not None:
                image = np.ascontiguousarray(image[: crop[0], : crop[1]])
            true = draw_map(family, *image.shape[:2], rng)
            blurry = blur(image, true)
            start = time.perf_counter()
            errors.append(map_errors(estimate(blurry), true))
            seconds.append(time.perf_counter() - start)
        size_rows[name] = {**mean_errors(errors), "seconds_median": float(np.median(seconds))}
        print(f"  size {name}: MAE {size_rows[name]['mae']:.3f}, {size_rows[name]['seconds_median']:.2f} s", flush=True)
    result["sizes"] = size_rows
    return result


_BIG_SCRIPT = """
import os, resource, sys, time, warnings
import cv2, numpy as np
cv2.setNumThreads(1)
warnings.simplefilter("ignore")
from runtime.estimate import estimate_blur_map
small = np.load(sys.argv[1])
image = cv2.resize(small, (6000, 4000), interpolation=cv2.INTER_CUBIC)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
radius = estimate_blur_map(image, channel_order="rgb")
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(seconds, before / 1024, peak / 1024, radius.shape[0], radius.shape[1])
"""


def run_speed(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from training.synthesis import draw_map

    photos = validation_photos(args.images, 4, offset=11)
    image = mosaic(photos, 2, 2)
    blurry = blur(image, draw_map("product_inc_inc", *image.shape[:2], np.random.default_rng(3)))
    runs = []
    for _ in range(3):
        timings: dict[str, float] = {}
        estimate(blurry, timings)
        runs.append(timings)
    stages = {key: float(np.median([t[key] for t in runs])) for key in runs[0]}
    print("  speed 1.2 MP: " + ", ".join(f"{k} {v:.3f} s" for k, v in stages.items()), flush=True)
    small = out / "_big_source.npy"
    np.save(small, blurry)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BIG_SCRIPT, str(small)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
    finally:
        small.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    seconds, before_mb, peak_mb, h, w = done.stdout.split()
    big = {
        "size": f"{w}×{h}",
        "seconds": float(seconds),
        "rss_before_mb": float(before_mb),
        "peak_rss_mb": float(peak_mb),
    }
    print(
        f"  speed 24 MP: {float(seconds):.2f} s, peak RSS {float(peak_mb):.0f} MB "
        f"(photo loaded: {float(before_mb):.0f} MB)",
        flush=True,
    )
    return {
        "size_1_2mp": f"{image.shape[1]}×{image.shape[0]}",
        "stages_seconds": stages,
        "24mp": big,
        "cpu": cpu_model(),
        "load_average": os.getloadavg(),
    }


def run_end_to_end(args: argparse.Namespace) -> dict[str, Any]:
    from runtime.deblurrer import BUNDLED_MODEL_PATH, Deblurrer
    from runtime.metrics import psnr, ssim
    from training.synthesis import MAP_FAMILIES, draw_map

    model = args.model or BUNDLED_MODEL_PATH
    deblurrer = Deblurrer(model, backend="onnxruntime-cpu", tile=None, threads=1)
    rng = np.random.default_rng(4)
    scores: dict[str, list[tuple[float, float]]] = {
        "blurry input": [],
        "SVBR-Net, true map": [],
        "SVBR-Net, estimated map": [],
        "SVBR-Net, estimated map (method=table)": [],
    }
    map_rows = []
    skipped = 0
    photos = validation_photos(args.images, args.photos * 2, offset=5)
    for index, path in enumerate(photos):
        sharp = load(path, END_TO_END_HW)
        for draw in range(2):
            family = MAP_FAMILIES[(2 * index + draw) % len(MAP_FAMILIES)]
            true = draw_map(family, *sharp.shape[:2], rng)
            blurry = blur(sharp, true)
            if np.array_equal(blurry, sharp):
                skipped += 1
                continue
            estimated = estimate(blurry)
            map_rows.append(map_errors(estimated, true))
            outputs = {
                "blurry input": blurry,
                "SVBR-Net, true map": deblurrer.deblur(blurry, true, channel_order="rgb"),
                "SVBR-Net, estimated map": deblurrer.deblur(blurry, estimated, channel_order="rgb"),
                "SVBR-Net, estimated map (method=table)": deblurrer.deblur(
                    blurry, estimate(blurry, method="table"), channel_order="rgb"
                ),
            }
            for name, output in outputs.items():
                scores[name].append((psnr(sharp, output), ssim(sharp, output)))
    deblurrer.close()
    rows = {
        name: {"psnr": float(np.mean([s[0] for s in v])), "ssim": float(np.mean([s[1] for s in v]))}
        for name, v in scores.items()
    }
    for name, m in rows.items():
        print(f"  end to end {name}: {m['ssim']:.3f} / {m['psnr']:.2f} dB", flush=True)
    return {
        "model": str(model),
        "samples": len(map_rows),
        "skipped_blur_free": skipped,
        "size": f"{END_TO_END_HW[0]}×{END_TO_END_HW[1]} (H×W)",
        "rows": rows,
        "map_errors": mean_errors(map_rows),
    }


# --- report -----------------------------------------------------------------------


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# Blur-map estimator (`runtime.estimate_blur_map`) on validation photos", ""]

    def command(part: str) -> list[str]:
        return [f"Command: `{report[part]['command']}`", ""] if "command" in report[part] else []

    if "calibration" in report:
        c = report["calibration"]
        lines += [
            f"## Per-level calibration ({c['photos']} validation photos, 480×640, uniform disk blur)",
            "",
            *command("calibration"),
            "| true r (px) | median | 25–75 % | MAE |",
            "| ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {lv['radius']:.1f} | {lv['median']:.2f} | {lv['p25']:.2f}–{lv['p75']:.2f} | {lv['mae']:.2f} |"
            for lv in c["levels"]
        ]
        lines += [
            "",
            f"Monotone: {c['monotone']}; median within ±0.5 px for 1–5 px: {c['within_0.5_for_1_to_5']} "
            f"(worst {c['max_abs_median_error_1_to_5']:.2f} px).",
            "",
        ]
    if "dense" in report:
        d = report["dense"]
        lines += [
            f"## Dense maps, 13 families ({d['photos_per_family']} validation photos each, 480×640)",
            "",
            *command("dense"),
            '| family | MAE (px) | bias (px) | within ±0.5 px | method="table": MAE / within ±0.5 '
            "| augmented DT map (true radii at edges): MAE / within ±0.5 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name, f in {**d["families"], "**all**": d["all"]}.items():
            e, a, t = f["estimated"], f["augmented_dt"], f.get("table")
            table = f"{t['mae']:.3f} / {100 * t['within_0.5']:.0f} %" if t else ""
            lines.append(
                f"| {name} | {e['mae']:.3f} | {e['bias']:+.3f} | {100 * e['within_0.5']:.0f} % | {table} | "
                f"{a['mae']:.3f} / {100 * a['within_0.5']:.0f} % |"
            )
        lines.append("")
    if "robustness" in report:
        r = report["robustness"]
        lines += [
            f"## Robustness (13 families × {r['photos_per_family']} photos)",
            "",
            *command("robustness"),
            "| condition | MAE (px) | bias (px) | within ±0.5 px |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {k} | {m['mae']:.3f} | {m['bias']:+.3f} | {100 * m['within_0.5']:.0f} % |"
            for k, m in r["conditions"].items()
        ]
        lines += [
            "",
            "| size (mosaics of validation photos) | MAE (px) | bias (px) | within ±0.5 px | time (median) |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {k} | {m['mae']:.3f} | {m['bias']:+.3f} | {100 * m['within_0.5']:.0f} % | {m['seconds_median']:.2f} s |"
            for k, m in r["sizes"].items()
        ]
        lines.append("")
    if "speed" in report:
        s = report["speed"]
        lines += [
            f"## Speed ({s['cpu']}, 1 thread; load average {s['load_average'][0]:.1f})",
            "",
            *command("speed"),
            f"{s['size_1_2mp']} (1.2 MP), median of 3: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in s["stages_seconds"].items())
            + ".",
            "",
            f"24 MP ({s['24mp']['size']}): {s['24mp']['seconds']:.2f} s, peak RSS {s['24mp']['peak_rss_mb']:.0f} MB "
            f"(of which {s['24mp']['rss_before_mb']:.0f} MB before the call: interpreter, libraries and the photo).",
            "",
        ]
    if "end_to_end" in report:
        e = report["end_to_end"]
        lines += [
            f"## End to end ({e['samples']} validation samples {e['size']}, model {Path(e['model']).name})",
            "",
            *command("end_to_end"),
            "| input to SVBR-Net | SSIM | PSNR (dB) |",
            "| --- | ---: | ---: |",
        ]
        lines += [f"| {k} | {m['ssim']:.3f} | {m['psnr']:.2f} |" for k, m in e["rows"].items()]
        m = e["map_errors"]
        lines += [
            "",
            f"Estimated maps on these samples: MAE {m['mae']:.3f} px, bias {m['bias']:+.3f} px, "
            f"{100 * m['within_0.5']:.0f} % within ±0.5 px.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--images",
        type=Path,
        default=Path("../shared/datasets/sharp-train"),
        help="folder of sharp photos; only its validation split (seed 0) is used",
    )
    parser.add_argument("--photos", type=int, default=16, help="validation photos per level / family (default 16)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--fit-photos", type=int, default=24, help="training photos for --parts fit (default 24)")
    parser.add_argument("--model", type=Path, help="ONNX model for end_to_end (default: the bundled model)")
    add_output(parser, dest="out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS) - set(EXTRA_PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    cv2.setNumThreads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "estimate.json"
    report: dict[str, Any] = json.loads(report_path.read_text()) if report_path.is_file() else {}
    command = "python -m benchmarks.estimate " + " ".join(argv if argv is not None else sys.argv[1:])
    runners = {
        "calibration": lambda: run_calibration(args, args.out),
        "dense": lambda: run_dense(args),
        "robustness": lambda: run_robustness(args),
        "speed": lambda: run_speed(args, args.out),
        "end_to_end": lambda: run_end_to_end(args),
        "fit": lambda: run_fit(args),
    }
    for part in parts:
        print(f"estimate benchmark: {part}", flush=True)
        start = time.perf_counter()
        report[part] = runners[part]()
        report[part]["benchmark_seconds"] = time.perf_counter() - start
        report[part]["command"] = command
        report_path.write_text(json.dumps(report, indent=1))  # parts accumulate across runs
    (args.out / "estimate.md").write_text(to_markdown(report))
    print(f"wrote {report_path} and {args.out / 'estimate.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
