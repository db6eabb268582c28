"""``svbr estimate``: write the estimated blur map of a photo, or of a folder of photos.

    svbr estimate photo.jpg -o photo.npy                      # H×W float32 radii in px
    svbr estimate photo.jpg -o photo.npy --preview map.png    # plus a colour picture with a scale bar
    svbr estimate photos/ -o maps/ [--preview previews/]      # folder: maps/<stem>.npy

The map is what ``svbr deblur photo.jpg -o sharp.png`` estimates and uses when no
``--blur-map`` is given; ``svbr deblur photo.jpg --blur-map photo.npy`` reads
it back. Problems with the files end the command with a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from runtime import io as media
from runtime.cli import CliError
from runtime.constants import MAX_RADIUS_PX
from runtime.estimate import estimate_blur_map
from runtime.io import MediaError, read_image, write_image
from runtime.pyramid import DEFAULT_MAX_RADIUS_PX, validate_max_radius

#: Height of the preview's scale bar, px (plus the labels under it).
_BAR_HEIGHT_PX = 16


def render_preview(radius_px: np.ndarray, max_radius_px: float = MAX_RADIUS_PX) -> np.ndarray:
    """A blur map as a BGR uint8 picture: viridis colours (0 px dark blue → 6 px yellow) and a labelled scale bar below."""
    height, width = radius_px.shape
    to_colour = lambda r: cv2.applyColorMap(  # noqa: E731
        np.clip(np.rint(r / max_radius_px * 255), 0, 255).astype(np.uint8), cv2.COLORMAP_VIRIDIS
    )
    picture = to_colour(radius_px)
    bar_width = max(width, 160)
    font_scale = 0.4
    label_height = 18
    bar = to_colour(np.tile(np.linspace(0, max_radius_px, bar_width, dtype=np.float32), (_BAR_HEIGHT_PX, 1)))
    labels = np.full((label_height, bar_width, 3), 255, np.uint8)
    step = next(s for s in (1, 2, 4, 6, 12, 24, 48) if max_radius_px / s <= 12)  # at most ~12 labels
    for value in range(0, int(max_radius_px) + 1, step):
        x = int(round(value / max_radius_px * (bar_width - 1)))
        cv2.line(labels, (x, 0), (x, 4), (0, 0, 0), 1)
        text = f"{value} px" if value == int(max_radius_px) else str(value)
        (text_width, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        left = min(max(0, x - text_width // 2), bar_width - text_width)
        cv2.putText(
            labels, text, (left, label_height - 3), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), 1, cv2.LINE_AA
        )
    canvas = np.full((height + 4 + _BAR_HEIGHT_PX + label_height, bar_width, 3), 255, np.uint8)
    canvas[:height, :width] = picture
    canvas[height + 4 : height + 4 + _BAR_HEIGHT_PX] = bar
    canvas[height + 4 + _BAR_HEIGHT_PX :] = labels
    return canvas


def _is_folder(text: str) -> bool:
    return media.output_is_folder(text)


def plan_jobs(input_path: Path, output: str, preview: str | None) -> list[tuple[Path, Path, Path | None]]:
    """(image, map .npy, preview or None) triples, checked before any work starts."""
    if not input_path.exists():
        raise CliError(f"input not found: {input_path}")
    if input_path.is_dir():
        images = media.list_images(input_path)
        if not images:
            raise CliError(f"no images ({media.image_suffix_list()}) in {input_path}")
        if Path(output).exists() and not Path(output).is_dir():
            raise CliError(f"input {input_path} is a folder, so -o must be a folder: {output}")
        if preview is not None and Path(preview).exists() and not Path(preview).is_dir():
            raise CliError(f"input {input_path} is a folder, so --preview must be a folder: {preview}")
        return [
            (
                image,
                Path(output) / f"{image.stem}.npy",
                Path(preview) / f"{image.stem}.png" if preview is not None else None,
            )
            for image in images
        ]
    map_path = Path(output) / f"{input_path.stem}.npy" if _is_folder(output) else Path(output)
    if map_path.suffix.lower() != ".npy":
        raise CliError(f"-o must name a .npy file (or a folder), got {output}")
    preview_path = None
    if preview is not None:
        preview_path = Path(preview) / f"{input_path.stem}.png" if _is_folder(preview) else Path(preview)
        media.check_writable(preview_path)
    return [(input_path, map_path, preview_path)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr estimate",
        description="Estimate the blur map of a photo (the defocus disk radius of every pixel, in px; "
        "0 = in focus, else one of the 23 levels 0.5…6 px, or above 6 px in 0.25 px steps up to --max-radius) "
        "with the edge-based estimator of Karaali & Jung 2018 (measured on an image pyramid for radii above 6 px), "
        "and write it as a .npy array that `svbr deblur --blur-map` reads.",
    )
    parser.add_argument("input", type=Path, help="image file, or a folder of images")
    parser.add_argument("-o", "--output", required=True, help="output .npy file, or a folder (maps named <stem>.npy)")
    parser.add_argument("--preview", help="also write a colour picture of the map with a scale bar (file, or folder)")
    parser.add_argument(
        "--max-radius",
        type=float,
        default=DEFAULT_MAX_RADIUS_PX,
        metavar="PX",
        help=f"largest radius estimated, 6-192 px (default {DEFAULT_MAX_RADIUS_PX:g}, as svbr deblur): "
        "radii above 6 px are measured on pyramid levels 1/2, 1/4, ...; 6 = the single-level "
        "estimator (saturates at 6 px)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            validate_max_radius(args.max_radius)
        except ValueError as error:
            raise CliError(f"--max-radius: {error}") from error
        jobs = plan_jobs(args.input, args.output, args.preview)
        for image_path, map_path, preview_path in tqdm(jobs, unit="image", disable=args.quiet or len(jobs) == 1):
            image = read_image(image_path)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    radius = estimate_blur_map(image, channel_order="bgr", max_radius_px=args.max_radius)
                except ValueError as error:
                    raise CliError(f"{image_path.name}: {error}") from error
            for warning in caught:
                tqdm.write(f"svbr estimate: warning: {image_path.name}: {warning.message}", file=sys.stderr)
            map_path.parent.mkdir(parents=True, exist_ok=True)
            media.write_blur_map(map_path, radius)
            if preview_path is not None:
                write_image(preview_path, render_preview(radius, max(MAX_RADIUS_PX, math.ceil(float(radius.max())))))
            if not args.quiet:
                in_focus = float(np.mean(radius == 0))
                tqdm.write(
                    f"{image_path.name}: radius median {np.median(radius):.2f} px, max {radius.max():.2f} px, "
                    f"{100 * in_focus:.0f} % in focus -> {map_path}"
                )
    except (CliError, MediaError) as error:
        print(f"svbr estimate: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
