"""Would the Pixel 4 photos gain if the estimated blur map read large radii larger? (issue 19)

    python -m benchmarks.real_map_gain --scale 0.5 --gain 1 1.3 1.6     # ~3 min per gain at ½, 1 core

At ½ and full size the runtime's estimate averages 0.84× the map fitted from each blurry / all-in-focus
pair (``svbr eval-real``'s ``estimated_map_mean_px`` against ``fitted_map_mean_px``), and the fitted map
deblurs 0.5–0.6 dB better. This measures whether the scale is what costs that: the ``deblur(photo)``
row of the Pixel 4 benchmark (``benchmarks.real``'s protocol) with every estimated radius above 6 px
(the pyramid's part) read as ``6 + gain × (r − 6)``; radii ≤ 6 px are left alone. The estimate is made
once per scene and reused for every gain. Prints one line per gain and writes ``real_map_gain.json``
to ``-o`` (default ``reports/real``). Measurement only: the Pixel 4 set is a dev set, never trained on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from benchmarks._common import display_path  # noqa: E402
from benchmarks.real import DEFAULT_OUTPUT, list_scenes, resolve_data_dir, score_pixel4  # noqa: E402
from runtime.arguments import add_output  # noqa: E402
from runtime.constants import MAX_RADIUS_PX as TRAINED_RADIUS_PX  # noqa: E402
from runtime.estimate import estimate_blur_map  # noqa: E402
from runtime.io import file_sha256  # noqa: E402


def read_larger(radius_px: np.ndarray, gain: float) -> np.ndarray:
    """``radius_px`` (H×W px) with every radius above the trained 6 px stretched by ``gain`` from 6 px up."""
    stretched = TRAINED_RADIUS_PX + gain * (radius_px - TRAINED_RADIUS_PX)
    return np.where(radius_px > TRAINED_RADIUS_PX, stretched, radius_px).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_map_gain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, choices=(0.25, 0.5, 1.0), default=0.5, help="default 0.5")
    parser.add_argument("--gain", type=float, nargs="+", default=[1.0, 1.3, 1.6], help="default 1 1.3 1.6")
    parser.add_argument("--data", default=None, help="extracted Pixel 4 data (as svbr eval-real)")
    add_output(parser, type=Path, default=DEFAULT_OUTPUT, help="folder for real_map_gain.json (default %(default)s)")
    args = parser.parse_args(argv)
    data_dir = resolve_data_dir(args.data)
    if not list_scenes(data_dir):
        print(f"real_map_gain: no Pixel 4 data in {data_dir}; see `svbr eval-real --help`", file=sys.stderr)
        return 2

    from runtime.deblurrer import BUNDLED_MODEL_PATH, Deblurrer

    deblurrer = Deblurrer(threads=1)  # max_radius_px: the runtime default, as deblur(photo) runs
    estimates: dict[bytes, np.ndarray] = {}
    rows = []
    for gain in args.gain:

        def deblur_photo(image: np.ndarray, gain: float = gain) -> np.ndarray:
            key = image.tobytes()
            if key not in estimates:
                estimates[key] = estimate_blur_map(image, channel_order="rgb", max_radius_px=deblurrer.max_radius_px)
            return deblurrer.deblur(image, read_larger(estimates[key], gain), channel_order="rgb")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # per-scene estimator warnings, as svbr eval-real
            report = score_pixel4(deblur_photo, args.scale, data_dir, layered=False)
        mean = report["mean"]
        rows.append({"gain": gain, "blurry": mean["blurry"], "deblur(photo)": mean["deblur(photo)"]})
        print(
            f"gain {gain:g}: blurry {mean['blurry']['psnr']:.2f} / {mean['blurry']['ssim']:.3f}  "
            f"deblur(photo) {mean['deblur(photo)']['psnr']:.2f} / {mean['deblur(photo)']['ssim']:.3f}",
            flush=True,
        )
    deblurrer.close()
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "real_map_gain.json"
    path.write_text(
        json.dumps(
            {
                "model": {"path": display_path(BUNDLED_MODEL_PATH), "sha256": file_sha256(BUNDLED_MODEL_PATH)},
                "scale": args.scale,
                "max_radius_px": deblurrer.max_radius_px,
                "rows": rows,
            },
            indent=1,
        )
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
