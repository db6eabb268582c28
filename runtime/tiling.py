"""Exact tiling: plan tiles, cut reflect-padded windows, run them in batches, stitch the centres.

Pure functions over numpy arrays; nothing here knows about networks or backends
(the model is a ``run_batch`` callable), so a numpy filter with a known
receptive field tests it exactly.

Geometry. The image (H×W) is extended by reflection ("reflect-101": the edge
pixel is not repeated) into a *canvas*: ``halo`` px on every side, plus up to
``multiple - 1`` px more at the bottom and right so that the covered area is
a multiple of ``multiple``. Every window is a crop of that one canvas: the
tile's valid centre plus ``halo`` px of context on each side. Because all
windows are crops of the same canvas at offsets that are multiples of
``multiple`` (the network downsamples twice by 2, so it is only
shift-equivariant by multiples of 4), a window's centre equals the
corresponding part of one pass over the whole canvas whenever ``halo`` covers
the model's receptive-field half-width. The full-frame pass is simply the
one-tile plan, so both modes treat the image borders identically.

All windows of a plan have one size, so any number of them stack into one
batch. Tiles that would run past the canvas are shifted back inside it
(their centres overlap a neighbour's; the overlapping values agree).

Windows are gathered with index arrays instead of padding the whole image, so
no image-sized padded copy is ever made: peak memory is the input, the output
and one batch of windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

#: ``run_batch(*windows) -> results``: every input's windows stacked on a new
#: leading axis (N×h×w or N×h×w×C); returns N×h×w×C_out.
RunBatch = Callable[..., np.ndarray]

#: ``on_progress(tiles_done, tiles_total)``, called after every batch.
OnProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class TilePlan:
    """Where every tile of one image lies.

    Attributes:
        height, width: image size (px).
        tile_height, tile_width: size of every tile's valid centre (px, multiples of ``multiple``).
        halo: context (px) on each side of a centre.
        origins: top-left (row, column) of each tile's centre in image coordinates;
            a centre may extend past the image's bottom/right edge by less than
            ``multiple`` px (the padded part of the canvas), never more.
    """

    height: int
    width: int
    tile_height: int
    tile_width: int
    halo: int
    origins: tuple[tuple[int, int], ...]

    @property
    def window_height(self) -> int:
        """Rows of every window the model sees: centre plus halo on both sides."""
        return self.tile_height + 2 * self.halo

    @property
    def window_width(self) -> int:
        """Columns of every window the model sees."""
        return self.tile_width + 2 * self.halo

    def __len__(self) -> int:
        return len(self.origins)


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


def _tile_starts(length: int, tile: int) -> list[int]:
    """Starts of tiles of size ``tile`` covering [0, length); ``length`` and ``tile`` share a multiple.

    The last tile is shifted back to end at ``length`` so that all tiles have one size.
    """
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


def plan_tiles(height: int, width: int, tile: int | None, halo: int, multiple: int = 4) -> TilePlan:
    """Plan the tiles of an H×W image.

    Args:
        height, width: image size in px, >= 1.
        tile: edge of a tile's valid centre in px, rounded up to a multiple of
            ``multiple``; ``None`` means one tile covering the whole image (a
            full-frame pass). Tiles larger than the image shrink to fit it.
        halo: context in px around every centre, rounded up to a multiple of
            ``multiple``. Tiled output equals the full-frame output when it is
            at least the model's receptive-field half-width.
        multiple: the model's required size multiple (4 for SVBR-Net).

    Returns:
        The plan; ``len(plan)`` tiles, all of one window size.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image must not be empty, got {height}×{width}")
    if tile is not None and tile < 1:
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile}")
    if halo < 0:
        raise ValueError(f"halo must be >= 0 px, got {halo}")
    canvas_height, canvas_width = round_up(height, multiple), round_up(width, multiple)
    halo = round_up(halo, multiple)
    if tile is None:
        tile_height, tile_width = canvas_height, canvas_width
    else:
        tile = round_up(tile, multiple)
        tile_height, tile_width = min(tile, canvas_height), min(tile, canvas_width)
    origins = tuple(
        (row, column)
        for row in _tile_starts(canvas_height, tile_height)
        for column in _tile_starts(canvas_width, tile_width)
    )
    return TilePlan(height, width, tile_height, tile_width, halo, origins)


def reflect_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices into an axis of length ``size`` for positions ``start..stop-1``, reflected at both ends.

    Reflection is "reflect-101" (…, 2, 1, 0, 1, 2, …): the edge sample is not
    repeated; it repeats periodically, so any amount of padding works, even
    on axes shorter than the padding. An axis of length 1 repeats its only sample.
    """
    positions = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(positions)
    period = 2 * (size - 1)
    folded = np.mod(positions, period)
    return np.where(folded < size, folded, period - folded)


def extract_window(array: np.ndarray, plan: TilePlan, origin: tuple[int, int]) -> np.ndarray:
    """The window (centre plus halo) around one tile, reflect-padded where it leaves the image.

    Args:
        array: H×W or H×W×C, the image size of ``plan``.
        plan: the tile plan.
        origin: (row, column) of the tile centre's top-left, from ``plan.origins``.

    Returns:
        A new array ``plan.window_height × plan.window_width`` (×C), same dtype.
    """
    row, column = origin
    rows = reflect_indices(row - plan.halo, row - plan.halo + plan.window_height, plan.height)
    columns = reflect_indices(column - plan.halo, column - plan.halo + plan.window_width, plan.width)
    return array[rows[:, None], columns[None, :]]


def stitch_window(output: np.ndarray, result: np.ndarray, plan: TilePlan, origin: tuple[int, int]) -> None:
    """Write a window result's valid centre into ``output``, cropped to the image.

    Args:
        output: H×W×C destination, modified in place.
        result: window_height×window_width×C model output for the tile at ``origin``.
    """
    row, column = origin
    rows = min(plan.tile_height, plan.height - row)
    columns = min(plan.tile_width, plan.width - column)
    output[row : row + rows, column : column + columns] = result[
        plan.halo : plan.halo + rows, plan.halo : plan.halo + columns
    ]


def run_tiled(
    inputs: Sequence[np.ndarray],
    run_batch: RunBatch,
    *,
    tile: int | None,
    halo: int,
    batch_size: int = 1,
    multiple: int = 4,
    on_progress: OnProgress | None = None,
) -> np.ndarray:
    """Run a model over an image tile by tile and stitch the result.

    Args:
        inputs: arrays of one spatial size H×W, each H×W or H×W×C, any dtype
            (e.g. the uint8 image and the float radius map). Windows keep the dtype.
        run_batch: the model: called with one stacked batch per input
            (N×h×w or N×h×w×C, h and w multiples of ``multiple``), returns
            N×h×w×C_out; the output takes the dtype of its first result.
        tile, halo, multiple: as in :func:`plan_tiles`.
        batch_size: windows per ``run_batch`` call (the last batch may be smaller).
        on_progress: called as ``on_progress(done, total)`` after every batch.

    Returns:
        H×W×C_out array stitched from the tile centres.
    """
    if not inputs:
        raise ValueError("run_tiled needs at least one input array")
    height, width = inputs[0].shape[:2]
    for array in inputs[1:]:
        if array.shape[:2] != (height, width):
            raise ValueError(f"inputs differ in size: {array.shape[:2]} vs {(height, width)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    plan = plan_tiles(height, width, tile, halo, multiple)
    output: np.ndarray | None = None
    for first in range(0, len(plan), batch_size):
        origins = plan.origins[first : first + batch_size]
        batches = [np.stack([extract_window(array, plan, origin) for origin in origins]) for array in inputs]
        results = run_batch(*batches)
        expected = (len(origins), plan.window_height, plan.window_width)
        if results.ndim != 4 or results.shape[:3] != expected:
            raise ValueError(f"run_batch returned shape {results.shape}, expected {expected}×C")
        if output is None:
            output = np.empty((height, width, results.shape[3]), dtype=results.dtype)
        for origin, result in zip(origins, results):
            stitch_window(output, result, plan, origin)
        if on_progress is not None:
            on_progress(first + len(origins), len(plan))
    assert output is not None  # a plan always has at least one tile
    return output
