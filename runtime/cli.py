"""``svbr deblur``: deblur an image file, or a folder of them, given blur maps.

    svbr deblur photo.jpg --blur-map photo.npy -o sharp.png
    svbr deblur photo.jpg --blur-map photo_map.png --map-scale 0.05 -o sharp.png
    svbr deblur photos/ --blur-map maps/ -o sharp/
    svbr deblur photo.jpg -o sharp.png          # no map: estimated (runtime.estimate_blur_map)

A blur map is the defocus disk radius of every pixel, in px of that image:
a ``.npy`` array (H×W, float radii) or an 8/16-bit single-channel PNG whose
values times ``--map-scale`` are the radii. In folder mode each image's map is
the file of the same name stem in the map folder (``photo.jpg`` ->
``maps/photo.npy`` or ``maps/photo.png``). Problems with the files end the
command with a one-line error and exit code 2.

    svbr deblur photos/ --blur-map maps/ -o sharp/ --ray [ADDRESS]

``--ray`` deblurs the folder on Ray Data actors instead (``runtime.archive``): same outputs, but
a bad file is reported in ``sharp/ray-summary.json`` and skipped, and a rerun skips finished outputs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from runtime import io as media
from runtime.arguments import add_deblur_options, deblur_option_error
from runtime.backends import backend_names
from runtime.deblurrer import Deblurrer
from runtime.io import (  # noqa: F401 - IMAGE_SUFFIXES, MAP_SUFFIXES re-exported for older imports
    IMAGE_SUFFIXES,
    MAP_SUFFIXES,
    MediaError,
    check_writable,
    find_map,
    read_blur_map,
    read_image,
    write_image,
)


class CliError(Exception):
    """A problem with the user's files or options: reported in one line, exit code 2.

    File problems found by :mod:`runtime.io` arrive as :class:`~runtime.io.MediaError` and are reported the same way.
    """


def list_images(folder: Path) -> list[Path]:
    """The image files in ``folder`` (by suffix, not recursive), sorted; folder mode deblurs exactly these."""
    images = media.list_images(folder)
    if not images:
        raise CliError(f"no images ({media.image_suffix_list()}) in {folder}")
    return images


def plan_jobs(input_path: Path, map_path: Path | None, output: str) -> list[tuple[Path, Path | None, Path]]:
    """(image, map, output) triples; every file is checked to exist before any work starts.

    ``output`` is a folder when it exists as one or ends with a path separator.
    ``map_path`` None: no maps (each is estimated from its image), map None in every triple.
    """
    output_path = Path(output)
    output_is_folder = media.output_is_folder(output)
    if not input_path.exists():
        raise CliError(f"input not found: {input_path}")
    if input_path.is_dir():
        if map_path is not None and not map_path.is_dir():
            raise CliError(f"input {input_path} is a folder, so --blur-map must be a folder too: {map_path}")
        if output_path.exists() and not output_path.is_dir():
            raise CliError(f"input {input_path} is a folder, so -o must be a folder: {output_path}")
        images = list_images(input_path)
        return [
            (image, find_map(image, map_path) if map_path is not None else None, output_path / image.name)
            for image in images
        ]
    if map_path is None:
        pass
    elif map_path.is_dir():
        map_path = find_map(input_path, map_path)
    elif not map_path.is_file():
        raise CliError(f"blur map not found: {map_path}")
    if output_is_folder:
        output_path = output_path / input_path.name
    check_writable(output_path)  # before any work: a typo in the suffix should not cost a full deblur
    return [(input_path, map_path, output_path)]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr deblur",
        description="Remove spatially varying defocus blur from an image (or a folder of images) given "
        "its blur map: the defocus disk radius of every pixel, in px (without --blur-map the map is "
        "estimated from the image). SVBR-Net is trained for radii up to 6 px: larger radii are deblurred "
        "at a coarser scale (an image pyramid: 1/2 up to 12 px, 1/4 up to 24, 1/8 up to 48) up to --max-radius, "
        "and clipped to it beyond.",
    )
    parser.add_argument("input", type=Path, help="image file, or a folder of images")
    parser.add_argument(
        "--blur-map",
        type=Path,
        metavar="MAP",
        help="blur map: .npy of radii in px, or an 8/16-bit PNG (with --map-scale); "
        "a folder of maps named like the images in folder mode. Omitted: each image's map is estimated "
        "from the image itself (svbr estimate writes such a map)",
    )
    parser.add_argument("-o", "--output", required=True, help="output image file, or folder in folder mode")
    parser.add_argument(
        "--map-scale",
        type=float,
        metavar="PX_PER_UNIT",
        help="radius in px of one PNG map unit (e.g. 0.05 for a 16-bit map in 1/20 px); required for PNG maps",
    )
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    parser.add_argument(
        "--backend",
        default="auto",
        choices=backend_names(),
        help="inference backend (default: auto = fastest available)",
    )
    parser.add_argument(
        "--tile",
        type=int,
        default=512,
        help="tile edge in px, rounded up to a multiple of 4; 0 = one full-frame pass (default 512)",
    )
    parser.add_argument("--batch-size", type=int, help="tiles per backend call (default: the backend's preference)")
    add_deblur_options(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ray = parser.add_argument_group(
        "archives on Ray (folder mode; pip install 'svbr-net[scale]')",
        "Deblur the folder on Ray Data actors that each hold one Deblurrer: one GPU per actor where the "
        "cluster has GPUs, CPU actors otherwise. Outputs equal folder mode's; a bad file is reported in "
        "OUTPUT_DIR/ray-summary.json and skipped; inputs whose output exists are skipped (reruns resume). "
        "Exit code 1 when any file failed.",
    )
    ray.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on Ray: no ADDRESS = a local Ray on this machine (or RAY_ADDRESS); ADDRESS = a cluster's "
        "head, e.g. HEAD:6379 (put --ray last, or write --ray=ADDRESS)",
    )
    ray.add_argument(
        "--ray-actors",
        type=int,
        metavar="N",
        help="number of actors (default: as many as fit: one per GPU, or per --ray-cpus-per-actor CPUs)",
    )
    ray.add_argument(
        "--ray-cpus-per-actor",
        type=int,
        default=1,
        metavar="C",
        help="CPUs (= ONNX Runtime threads) of each CPU actor (default 1)",
    )
    return parser


def deblur_file(
    deblurrer: Deblurrer, image_path: Path, map_path: Path | None, map_scale: float | None, show_tiles: bool
) -> np.ndarray:
    """Read, check and deblur one image (``map_path`` None: estimate its map); ``show_tiles`` draws a progress bar."""
    image = read_image(image_path)
    radius = read_blur_map(map_path, map_scale) if map_path is not None else None
    if radius is not None and radius.shape != image.shape[:2]:
        raise CliError(
            f"blur map {map_path} is {radius.shape[1]}×{radius.shape[0]} px but image {image_path} is "
            f"{image.shape[1]}×{image.shape[0]} px"
        )
    total = deblurrer.count_tiles(*image.shape[:2], radius)
    with (
        tqdm(total=total, desc=image_path.name, unit="tile", disable=not show_tiles) as bar,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")

        def progress(done: int, tiles: int) -> None:
            if tiles != bar.total:  # an estimated map may need pyramid levels: known only once estimated
                bar.total = tiles
                bar.refresh()
            bar.update(done - bar.n)

        try:
            sharp = deblurrer.deblur(image, radius, channel_order="bgr", on_progress=progress)
        except ValueError as error:  # e.g. negative or NaN radii
            raise CliError(f"{image_path.name}: {error}") from error
    for warning in caught:
        tqdm.write(f"svbr deblur: warning: {image_path.name}: {warning.message}", file=sys.stderr)
    return sharp


def _deblur_on_ray(args: argparse.Namespace) -> int:
    """``--ray``: the folder on Ray Data (``runtime.archive``); 1 when any file failed (listed in the summary)."""
    from runtime.archive import deblur_archive, summary_line  # Ray itself is imported there, only when needed

    if not args.input.is_dir():
        raise CliError(f"--ray deblurs a folder of images: {args.input} is not a folder")
    summary = deblur_archive(
        args.input,
        Path(args.output),
        map_folder=args.blur_map,
        map_scale=args.map_scale,
        model=args.model,
        backend=args.backend,
        tile=args.tile or None,
        batch_size=args.batch_size,
        address=args.ray or None,
        actors=args.ray_actors,
        cpus_per_actor=args.ray_cpus_per_actor,
        quiet=args.quiet,
        strength=args.strength,
        max_radius_px=args.max_radius,
    )
    print(summary_line(summary))
    shown = 20
    for failure in summary["failures"][:shown]:
        print(f"svbr deblur: failed: {failure['input']}: {failure['error']}", file=sys.stderr)
    if len(summary["failures"]) > shown:
        print(f"svbr deblur: ... and {len(summary['failures']) - shown} more failures in the summary", file=sys.stderr)
    return 1 if summary["counts"]["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.tile < 0:
            raise CliError(f"--tile must be >= 0, got {args.tile}")
        if args.map_scale is not None and not args.map_scale > 0:
            raise CliError(f"--map-scale must be > 0, got {args.map_scale}")
        problem = deblur_option_error(args)
        if problem:
            raise CliError(problem)
        if args.ray is not None:
            return _deblur_on_ray(args)
        if args.ray_actors is not None or args.ray_cpus_per_actor != 1:
            raise CliError("--ray-actors and --ray-cpus-per-actor need --ray")
        jobs = plan_jobs(args.input, args.blur_map, args.output)
        try:
            deblurrer = Deblurrer(
                args.model,
                backend=args.backend,
                tile=args.tile or None,
                batch_size=args.batch_size,
                strength=args.strength,
                max_radius_px=args.max_radius,
            )
        except (FileNotFoundError, RuntimeError, ValueError) as error:
            raise CliError(str(error)) from error
        with deblurrer:
            # One image: the bar counts its tiles; a folder: the bar counts images.
            single = len(jobs) == 1
            for image_path, map_path, output_path in tqdm(jobs, unit="image", disable=args.quiet or single):
                sharp = deblur_file(deblurrer, image_path, map_path, args.map_scale, single and not args.quiet)
                write_image(output_path, sharp)
    except (CliError, MediaError) as error:
        print(f"svbr deblur: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        where = jobs[0][2] if len(jobs) == 1 else args.output
        print(f"wrote {len(jobs)} image{'s' * (len(jobs) != 1)} to {where} ({deblurrer.backend.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
