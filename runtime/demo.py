"""``svbr demo``: a self-contained demo; needs no files and no network.

It draws a sharp synthetic scene, blurs it with a known spatially varying disk
blur (radius 0 px on the left growing to 5 px on the right), deblurs it with
the bundled model (or ``--model``), writes a side-by-side PNG
(blurry | blur map | SVBR-Net | ground truth) and prints PSNR/SSIM before and after.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from runtime.arguments import add_output, add_size
from runtime.backends import backend_names
from runtime.constants import MAX_RADIUS_PX
from runtime.deblurrer import Deblurrer
from runtime.defocus import blur
from runtime.metrics import psnr, ssim


def make_scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A sharp synthetic test scene, uint8 H×W×3 BGR.

    Edges at every orientation, fine text, stripes of several frequencies and
    saturated colour patches: what defocus blur destroys and deblurring must restore.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    gradients = np.stack(  # soft background gradients
        [60 + 80 * columns / width, 90 + 60 * rows / height, 150 - 50 * columns / width], axis=-1
    )
    scene = np.rint(gradients).astype(np.uint8)
    unit = max(4, min(height, width) // 24)
    for _ in range(14):  # random saturated rectangles and discs
        colour = tuple(int(c) for c in rng.choice([0, 40, 215, 255], size=3))
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        size = int(rng.integers(unit, 4 * unit))
        if rng.random() < 0.5:
            cv2.rectangle(scene, (x, y), (x + size, y + size // 2 + 1), colour, -1, cv2.LINE_AA)
        else:
            cv2.circle(scene, (x, y), size // 2 + 1, colour, -1, cv2.LINE_AA)
    band = slice(height // 3, height // 3 + max(2, height // 8))  # stripes, coarse to fine left to right
    period = 16.0 - 12.0 * columns[band] / width  # 16 px down to 4 px
    scene[band] = np.where((columns[band] // (period / 2)) % 2 == 0, 235, 20).astype(np.uint8)[..., None]
    board = slice(2 * height // 3, 2 * height // 3 + 2 * unit)  # checkerboard row
    checks = ((rows[board] // unit + columns[board] // unit) % 2)[..., None]
    scene[board] = (30 + 200 * checks).astype(np.uint8)
    scale = max(0.3, min(height, width) / 400)
    for index, text in enumerate(("SVBR-Net", "defocus 0-5 px", "spatially varying")):
        origin = (int(0.05 * width), int((0.12 + 0.09 * index) * height))
        cv2.putText(scene, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(scene, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (10, 10, 10), 1, cv2.LINE_AA)
    return scene


def make_blur_map(height: int, width: int, max_radius_px: float = 5.0) -> np.ndarray:
    """Known spatially varying blur: radius 0 px over the left 15 %, then linear to ``max_radius_px`` at the right.

    Returns:
        float32 H×W radii in px.
    """
    fraction = np.clip((np.arange(width, dtype=np.float32) / max(width - 1, 1) - 0.15) / 0.85, 0.0, 1.0)
    return np.broadcast_to(max_radius_px * fraction, (height, width)).astype(np.float32)


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    panel = panel.copy()
    scale = max(0.35, panel.shape[1] / 900)
    (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(panel, (0, 0), (text_width + 8, text_height + baseline + 8), (0, 0, 0), -1)
    cv2.putText(panel, text, (4, text_height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def side_by_side(
    blurry: np.ndarray,
    radius_px: np.ndarray,
    sharp_estimate: np.ndarray,
    truth: np.ndarray,
    captions: tuple[str, str, str, str],
) -> np.ndarray:
    """One uint8 H×4W×3 BGR picture: blurry | blur map (viridis) | deblurred | ground truth."""
    map_view = cv2.applyColorMap(
        np.rint(np.clip(radius_px / MAX_RADIUS_PX, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS
    )
    panels = (blurry, map_view, sharp_estimate, truth)
    return np.concatenate([_label(panel, caption) for panel, caption in zip(panels, captions)], axis=1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr demo",
        description="Self-contained demo: draw a sharp scene, blur it with a known spatially varying "
        "disk blur, deblur it, write a side-by-side PNG and print PSNR/SSIM before and after.",
    )
    add_output(
        parser, dest="out", type=Path, default=Path("svbr_demo.png"), help="side-by-side PNG (default svbr_demo.png)"
    )
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    parser.add_argument("--backend", default="auto", choices=backend_names(), help="inference backend (default auto)")
    parser.add_argument("--tile", type=int, default=512, help="tile edge in px; 0 = full frame (default 512)")
    add_size(parser, minimum=32, default=(480, 360), help="scene size, width x height (default 480x360)")
    parser.add_argument("--max-radius", type=float, default=5.0, help="blur radius in px at the right edge (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="scene layout seed")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 < args.max_radius <= MAX_RADIUS_PX:
        print(f"svbr demo: error: --max-radius must be in (0, {MAX_RADIUS_PX:g}] px", file=sys.stderr)
        return 2
    try:
        deblurrer = Deblurrer(args.model, backend=args.backend, tile=args.tile or None)
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"svbr demo: error: {error}", file=sys.stderr)
        return 2
    width, height = args.size
    truth = make_scene(height, width, args.seed)
    radius = make_blur_map(height, width, args.max_radius)
    blurry = blur(truth, radius)
    start = time.perf_counter()
    with deblurrer:
        restored = deblurrer.deblur(blurry, radius, channel_order="bgr")
    seconds = time.perf_counter() - start
    before = (psnr(truth, blurry), ssim(truth, blurry))
    after = (psnr(truth, restored), ssim(truth, restored))
    picture = side_by_side(
        blurry,
        radius,
        restored,
        truth,
        (
            f"blurry {before[0]:.2f} dB / {before[1]:.3f}",
            f"blur map 0-{args.max_radius:g} px",
            f"SVBR-Net {after[0]:.2f} dB / {after[1]:.3f}",
            "ground truth",
        ),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(args.out), picture):
        print(f"svbr demo: error: cannot write {args.out}", file=sys.stderr)
        return 2
    backend = deblurrer.backend
    print(f"SVBR-Net demo: {width}×{height} synthetic scene, disk blur 0 px (left) to {args.max_radius:g} px (right)")
    print(f"model {backend.model_path} on {backend.name} ({backend.device}, {backend.precision}), {seconds:.2f} s")
    print(f"{'':10} {'PSNR (dB)':>10} {'SSIM':>7}")
    print(f"{'blurry':10} {before[0]:10.2f} {before[1]:7.4f}")
    print(f"{'deblurred':10} {after[0]:10.2f} {after[1]:7.4f}")
    print(f"wrote {args.out} ({picture.shape[1]}×{picture.shape[0]}: blurry | blur map | SVBR-Net | ground truth)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
