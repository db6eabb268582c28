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
