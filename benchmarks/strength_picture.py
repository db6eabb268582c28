"""The picture of ``Deblurrer(strength=...)`` in docs/strength.md: blurry | strength 0.5 | 1.0 | 1.5.

    python -m benchmarks.strength_picture                 # writes reports/model/strength.png (+ strength.json)

The scene, blur map and blur are ``svbr demo``'s (``runtime.demo``: 360×480, disk radius 0 px on the
left rising to 5 px on the right); the model is the bundled one unless ``--model`` is given. PSNR/SSIM
against the sharp scene are printed in each panel and written to ``strength.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from runtime.arguments import add_output, add_size
from runtime.deblurrer import Deblurrer
from runtime.defocus import blur
from runtime.demo import _label, make_blur_map, make_scene
from runtime.metrics import psnr, ssim

STRENGTHS = (0.5, 1.0, 1.5)
DEFAULT_OUT = Path("reports/model/strength.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.strength_picture", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    add_size(parser, minimum=32, default=(480, 360), help="scene size, width x height (default 480x360, the demo's)")
    add_output(parser, dest="out", type=Path, default=DEFAULT_OUT, help=f"PNG to write (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    width, height = args.size
    truth = make_scene(height, width, 0)
    radius = make_blur_map(height, width, 5.0)
    blurry = blur(truth, radius)
    panels = [_label(blurry, f"blurry {psnr(truth, blurry):.2f} dB / {ssim(truth, blurry):.3f}")]
    scores = {"blurry": {"psnr": psnr(truth, blurry), "ssim": ssim(truth, blurry)}}
    for strength in STRENGTHS:
        with Deblurrer(args.model, tile=None, strength=strength) as deblurrer:
            sharp = deblurrer.deblur(blurry, radius)
        scores[f"strength {strength:g}"] = {"psnr": psnr(truth, sharp), "ssim": ssim(truth, sharp)}
        panels.append(_label(sharp, f"strength {strength:g}: {psnr(truth, sharp):.2f} dB / {ssim(truth, sharp):.3f}"))
    picture = np.concatenate(panels, axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        print(f"cannot write {args.out}", file=sys.stderr)
        return 2
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "command": "python -m benchmarks.strength_picture "
                + " ".join(argv if argv is not None else sys.argv[1:]),
                "model": str(args.model or "bundled"),
                "scene": f"svbr demo {height}×{width}, disk blur 0-5 px",
                "scores": scores,
            },
            indent=1,
        )
        + "\n"
    )
    for name, score in scores.items():
        print(f"{name:13} {score['psnr']:6.2f} dB  SSIM {score['ssim']:.4f}")
    print(f"wrote {args.out} ({picture.shape[1]}×{picture.shape[0]}, {args.out.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
