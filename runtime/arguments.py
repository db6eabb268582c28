"""argparse value types shared by the ``svbr`` commands (no torch, no training imports)."""

from __future__ import annotations

import argparse


def size_hw(text: str, minimum: int = 8) -> tuple[int, int]:
    """'360x340' -> (360, 340): height × width in px, each at least ``minimum``."""
    try:
        height, width = (int(v) for v in text.lower().strip().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 360x340 (H x W), got {text!r}") from None
    if height < minimum or width < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return height, width


def add_deblur_options(parser: argparse.ArgumentParser) -> None:
    """``--strength`` and ``--max-radius``, shared by ``svbr deblur`` and ``svbr stream`` (``Deblurrer``'s options)."""
    from runtime.pyramid import DEFAULT_MAX_RADIUS_PX, LIMIT_MAX_RADIUS_PX

    parser.add_argument(
        "--strength", type=float, default=1.0, metavar="S",
        help="how much of the correction to apply, 0-2: output = input + S × (deblurred − input); "
        "0 = the input, 1 = SVBR-Net's output (default), above 1 exaggerates it",
    )
    parser.add_argument(
        "--max-radius", type=float, default=DEFAULT_MAX_RADIUS_PX, metavar="PX",
        help=f"largest blur radius deblurred, 6-{LIMIT_MAX_RADIUS_PX:g} px (default {DEFAULT_MAX_RADIUS_PX:g}): "
        "radii above 6 px (the trained range) are deblurred on pyramid levels 1/2, 1/4, ... (at most 1/3 more "
        "work), radii above PX are clipped to PX with a warning; 6 = one full-resolution pass with radii above "
        "6 px clipped. Also the limit of estimated maps",
    )


def deblur_option_error(args: argparse.Namespace) -> str | None:
    """The problem with ``--strength`` / ``--max-radius`` (naming the option), or None when both are in range."""
    from runtime.pyramid import validate_max_radius
    from runtime.validation import validate_strength

    for option, check, value in (("--strength", validate_strength, args.strength),
                                 ("--max-radius", validate_max_radius, args.max_radius)):
        try:
            check(value)
        except ValueError as error:
            return f"{option}: {error}"
    return None
