"""``Deblurrer``: photos in, sharp photos out; validation, normalisation and tiling around a backend.

The network contract (SPEC §1) is applied here and nowhere else in the
runtime: images become RGB float32 in [0, 1] (uint8 / 255), radius maps
become ``radius_px / MAX_RADIUS_PX`` clipped to [0, 1]. Radii above
``MAX_RADIUS_PX`` (6 px, the largest trained blur) are deblurred at a coarser
scale of an image pyramid (``runtime.pyramid``) up to ``max_radius_px``
(default 48 px); radii beyond that are clipped with a warning.
``strength`` scales the correction: ``input + strength · (output − input)``.

No torch here or anywhere in ``runtime``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from runtime import pyramid
from runtime.backends import Backend, BackendOptions, create_backend
from runtime.constants import HALO_PX, MAX_RADIUS_PX, SIZE_MULTIPLE
from runtime.tiling import OnProgress, plan_tiles, round_up, run_tiled
from runtime.validation import CHANNEL_ORDERS, validate_image, validate_strength

if TYPE_CHECKING:
    from runtime.stream import StreamRunner, StreamStats

#: The default model, exported from the bundled weights (training/weights/svbrnet_cpu.pt).
BUNDLED_MODEL_PATH = Path(__file__).resolve().parent / "models" / "svbrnet.onnx"

#: The one command that (re)creates ``BUNDLED_MODEL_PATH`` from the bundled weights.
REGENERATE_BUNDLED_MODEL = "svbr export --bundled"

# --- normalisation: the network contract -------------------------------------


def image_to_network(images: np.ndarray, channel_order: str) -> np.ndarray:
    """N×H×W×3 uint8 (or float32 in [0, 1]) in ``channel_order`` -> float32 N×3×H×W RGB in [0, 1]."""
    if channel_order == "bgr":
        images = images[..., ::-1]
    if images.dtype == np.uint8:
        scaled = images.astype(np.float32) / np.float32(255)
    else:
        scaled = images.astype(np.float32, copy=False)
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def map_to_network(radius_px: np.ndarray) -> np.ndarray:
    """N×H×W radius in px -> float32 N×1×H×W, ``radius / MAX_RADIUS_PX`` clipped to [0, 1]."""
    scaled = np.clip(radius_px.astype(np.float32) / np.float32(MAX_RADIUS_PX), 0.0, 1.0)
    return np.ascontiguousarray(scaled[:, None])


def network_to_image(sharp: np.ndarray, dtype: np.dtype, channel_order: str) -> np.ndarray:
    """float32 N×3×H×W RGB in (0, 1) -> N×H×W×3 of ``dtype`` (uint8 rounded, or float32) in ``channel_order``."""
    images = np.clip(sharp.transpose(0, 2, 3, 1), 0.0, 1.0)
    if channel_order == "bgr":
        images = images[..., ::-1]
    if dtype == np.uint8:
        return np.rint(images * 255).astype(np.uint8)
    return images.astype(np.float32)


def network_to_float(sharp: np.ndarray, dtype: np.dtype, channel_order: str) -> np.ndarray:
    """As :func:`network_to_image` before its rounding: float32 N×H×W×3 in image units (0-255 for uint8)."""
    images = np.clip(sharp.transpose(0, 2, 3, 1), 0.0, 1.0)
    if channel_order == "bgr":
        images = images[..., ::-1]
    if dtype == np.uint8:
        return np.ascontiguousarray(images * 255, dtype=np.float32)
    return np.ascontiguousarray(images, dtype=np.float32)


def finish_image(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """float32 in image units -> the image dtype: uint8 clipped to [0, 255] and rounded, float32 clipped to [0, 1]."""
    if dtype == np.uint8:
        return np.rint(np.clip(value, 0.0, 255.0)).astype(np.uint8)
    return np.clip(value, 0.0, 1.0).astype(np.float32)


def apply_strength(value: np.ndarray, image: np.ndarray, strength: float) -> np.ndarray:
    """``image + strength · (value − image)`` in float32 (``value`` returned as is for strength 1)."""
    if strength == 1.0:
        return value
    base = image.astype(np.float32)
    return base + np.float32(strength) * (value - base)


# --- input validation ---------------------------------------------------------


def validate_inputs(image: np.ndarray, blur_map: np.ndarray, channel_order: str) -> None:
    """Raise ``ValueError`` naming the first problem with a ``deblur`` call's arguments."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if not isinstance(image, np.ndarray) or not isinstance(blur_map, np.ndarray):
        raise ValueError(
            f"image and blur_map must be numpy arrays, got {type(image).__name__} and {type(blur_map).__name__}"
        )
    validate_image(image, channel_order)
    if blur_map.ndim != 2:
        raise ValueError(
            f"blur_map must have 2 dimensions (H×W radii in px), got {blur_map.ndim}: shape {blur_map.shape}"
        )
    if blur_map.shape != image.shape[:2]:
        raise ValueError(f"blur_map size {blur_map.shape} does not match the image size {image.shape[:2]}")
    if not (np.issubdtype(blur_map.dtype, np.floating) or np.issubdtype(blur_map.dtype, np.integer)):
        raise ValueError(f"blur_map dtype must be a real number type (radii in px), got {blur_map.dtype}")
    low, high = float(blur_map.min()), float(blur_map.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("blur_map contains NaN or infinite radii")
    if low < 0:
        raise ValueError(f"blur_map contains negative radii (min {low:.4g} px); radii must be >= 0")


# --- the deblurrer ------------------------------------------------------------


class Deblurrer:
    """SVBR-Net inference on photos of any size.

    Args:
        model: ONNX model path; ``None`` = the bundled model (``BUNDLED_MODEL_PATH``).
        backend: a registry name (``"auto"`` = the fastest available, see
            ``runtime.backends.AUTO_ORDER``) or an already loaded :class:`Backend`
            (then ``model`` is ignored).
        tile: edge (px) of the tiles the image is processed in, rounded up to a
            multiple of 4; ``None`` = one full-frame pass (memory grows with the image).
        halo: context (px) around every tile; ``None`` = ``HALO_PX`` (84, the
            receptive-field half-width), for which tiled output equals the full-frame output.
        batch_size: tiles per backend call; ``None`` = the backend's preferred size.
        strength: how much of the correction to apply: ``input + strength · (output − input)``,
            in float before rounding; 0 returns the input, 1 the network's output (default),
            up to 2 to exaggerate it.
        max_radius_px: the largest radius (px) deblurred; radii above 6 px (the trained range)
            are deblurred on a pyramid level that brings them to ≤ 6 px (``runtime.pyramid``:
            ½ up to 12 px, ¼ up to 24, ⅛ up to 48, the default); radii above this are clipped
            to it with a warning. 6 = a single full-resolution pass (radii above 6 px clipped).
        options: a :class:`~runtime.backends.BackendOptions` (threads, device_id, workspace_mib,
            engine_cache, half, channels_last); ``backend_options`` keywords update it
            (e.g. ``Deblurrer(threads=2)``). Each backend reads the options it uses and ignores
            the rest, so the same call works whichever backend ``"auto"`` picks
            (``backend_name`` says which).
        backend_options: :class:`~runtime.backends.BackendOptions` fields as keywords.

    Raises:
        FileNotFoundError: the model file (or the bundled model) is missing.
        ValueError: a setting out of range (named in the message).
        TypeError: a keyword that is not a backend option.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        backend: str | Backend = "auto",
        tile: int | None = 512,
        halo: int | None = None,
        batch_size: int | None = None,
        *,
        strength: float = 1.0,
        max_radius_px: float = pyramid.DEFAULT_MAX_RADIUS_PX,
        options: BackendOptions | None = None,
        **backend_options: Any,
    ) -> None:
        self.strength = validate_strength(strength)
        self.max_radius_px = pyramid.validate_max_radius(max_radius_px)
        if tile is not None and tile < 1:
            raise ValueError(f"tile must be a positive number of pixels or None, got {tile}")
        if halo is not None and halo < 0:
            raise ValueError(f"halo must be >= 0 px or None, got {halo}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        backend_settings = BackendOptions.from_kwargs(options, **backend_options)  # TypeError on a typo, early
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            model_path = Path(model) if model is not None else BUNDLED_MODEL_PATH
            if not model_path.is_file():
                if model is None:
                    raise FileNotFoundError(
                        f"bundled model missing: {BUNDLED_MODEL_PATH}; regenerate it with "
                        f"`{REGENERATE_BUNDLED_MODEL}` (needs torch and the bundled weights) "
                        "or pass model=PATH to an exported ONNX model"
                    )
                raise FileNotFoundError(f"model not found: {model_path}")
            self.backend = create_backend(backend, model_path, backend_settings)
        self.tile = tile
        self.halo = HALO_PX if halo is None else halo
        self.batch_size = batch_size or self.backend.preferred_batch_size
        self._check_model_contract()

    @property
    def backend_name(self) -> str:
        """The registry name of the backend that runs (what ``"auto"`` chose), e.g. ``"onnxruntime-cpu"``."""
        return self.backend.name

    def _check_model_contract(self) -> None:
        """Refuse a model exported for a different normalisation or size contract."""
        metadata = self.backend.metadata
        for key, expected in (("svbr.max_radius_px", MAX_RADIUS_PX), ("svbr.size_multiple", SIZE_MULTIPLE)):
            if key in metadata and float(metadata[key]) != float(expected):
                raise ValueError(
                    f"{self.backend.model_path} was exported with {key}={metadata[key]}, this runtime uses {expected}"
                )

    def count_tiles(self, height: int, width: int, blur_map: np.ndarray | None = None) -> int:
        """Tiles an H×W image is split into (one backend window each), over all pyramid levels ``blur_map`` needs."""
        levels = (0,) if blur_map is None else pyramid.level_plan(blur_map, self.max_radius_px)
        return sum(self._level_tiles(height, width, levels))

    def _level_tiles(self, height: int, width: int, levels: tuple[int, ...]) -> list[int]:
        """Tiles of every level in ``levels`` (level 0 is always run, so always counted)."""
        sizes = [pyramid.level_size(height, width, level) for level in levels if level > 0] + [(height, width)]
        return [len(plan_tiles(h, w, self.tile, self.halo, SIZE_MULTIPLE)) for h, w in sizes]

    @overload
    def deblur(
        self,
        image: np.ndarray,
        blur_map: np.ndarray | None = None,
        *,
        channel_order: str = "bgr",
        on_progress: OnProgress | None = None,
        return_map: Literal[False] = False,
    ) -> np.ndarray: ...

    @overload
    def deblur(
        self,
        image: np.ndarray,
        blur_map: np.ndarray | None = None,
        *,
        channel_order: str = "bgr",
        on_progress: OnProgress | None = None,
        return_map: Literal[True],
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def deblur(
        self,
        image: np.ndarray,
        blur_map: np.ndarray | None = None,
        *,
        channel_order: str = "bgr",
        on_progress: OnProgress | None = None,
        return_map: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]: ...

    def deblur(
        self,
        image: np.ndarray,
        blur_map: np.ndarray | None = None,
        *,
        channel_order: str = "bgr",
        on_progress: OnProgress | None = None,
        return_map: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Remove spatially varying defocus blur.

        Args:
            image: H×W×3, uint8 or float32 in [0, 1]; channels in ``channel_order``. Camera
                formats too: mono (H×W or H×W×1), uint16, and 4 channels (alpha kept); see ``runtime.formats``.
            blur_map: H×W defocus disk radius per pixel in px (any real dtype),
                >= 0; radii above 6 px are deblurred on coarser pyramid levels up to
                ``max_radius_px`` and clipped to it (with a warning) beyond.
                ``None``: estimated from the image by :func:`runtime.estimate_blur_map`
                (radii up to ``max_radius_px``).
            channel_order: ``"bgr"`` (OpenCV's order, the default) or ``"rgb"``.
            on_progress: called as ``on_progress(tiles_done, tiles_total)`` after every batch
                (``tiles_total`` counts the tiles of every pyramid level the map needs).
            return_map: also return the blur map used (the estimate when ``blur_map`` is None).

        Returns:
            The sharp image: same shape, dtype and channel order as ``image``;
            with ``return_map``, the pair (sharp image, blur map used).

        Raises:
            ValueError: naming the problem with the inputs.
        """
        from runtime.formats import deblur_camera_frame, is_camera_format

        if is_camera_format(image):  # mono, uint16 or 4-channel frames: converted around this path, same format back
            used: dict[str, np.ndarray] = {}

            def colour_path(colour: np.ndarray, radius: np.ndarray | None, **kwargs: object) -> np.ndarray:
                sharp, used["map"] = self.deblur(colour, radius, return_map=True, **kwargs)
                return sharp

            sharp = deblur_camera_frame(colour_path, image, blur_map, channel_order, on_progress=on_progress)
            return (sharp, used["map"]) if return_map else sharp
        if blur_map is None:
            from runtime.estimate import estimate_blur_map  # numpy/OpenCV/SciPy only

            blur_map = estimate_blur_map(image, channel_order=channel_order, max_radius_px=self.max_radius_px)
        validate_inputs(image, blur_map, channel_order)
        largest = float(blur_map.max())
        if largest > self.max_radius_px:
            if self.max_radius_px == MAX_RADIUS_PX:
                reason = (
                    f"SVBR-Net is trained for radii up to {MAX_RADIUS_PX:g} px, larger radii are clipped to "
                    f"{MAX_RADIUS_PX:g} px (max_radius_px={MAX_RADIUS_PX:g}: no coarser pyramid levels)"
                )
            else:
                coarsest = pyramid.level_count(self.max_radius_px) - 1
                reason = (
                    f"radii above max_radius_px={self.max_radius_px:g} px are clipped to "
                    f"{self.max_radius_px:g} px (its coarsest pyramid level, 1/{2**coarsest}, brings "
                    f"{self.max_radius_px:g} px into the {MAX_RADIUS_PX:g} px SVBR-Net is trained for; "
                    f"raise max_radius_px, up to {pyramid.LIMIT_MAX_RADIUS_PX:g} px, to deblur more)"
                )
            warnings.warn(f"blur_map has radii up to {largest:.3g} px; {reason}", UserWarning, stacklevel=2)

        uint8_io = getattr(self.backend, "io", "float32") == "uint8"
        levels = pyramid.level_plan(blur_map, self.max_radius_px)
        if levels == (0,) and self.strength == 1.0:  # today's single full-resolution pass, bit for bit
            if uint8_io:
                sharp = self._deblur_uint8_io(image, blur_map, channel_order, on_progress)
            else:
                sharp = self._deblur_float(image, blur_map, channel_order, on_progress)
            return (sharp, blur_map) if return_map else sharp
        source = (
            image
            if (image.dtype == np.uint8 or not uint8_io)
            else np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        )  # a uint8-I/O graph takes uint8 only
        sharp = self._deblur_levels(source, blur_map, channel_order, on_progress, levels)
        if source is not image:
            sharp = sharp.astype(np.float32) / np.float32(255)
        return (sharp, blur_map) if return_map else sharp

    def _deblur_float(
        self, image: np.ndarray, blur_map: np.ndarray, channel_order: str, on_progress: OnProgress | None
    ) -> np.ndarray:
        """Today's path for a float32-I/O model: one tiled full-resolution pass, rounded per window."""

        def run_batch(images: np.ndarray, radii: np.ndarray) -> np.ndarray:
            # Per window batch, so the float copies are only ever tile-sized.
            network_image = image_to_network(images, channel_order)
            sharp = self.backend.run(network_image, map_to_network(radii))
            return network_to_image(sharp, image.dtype, channel_order)

        return run_tiled(
            [image, blur_map],
            run_batch,
            tile=self.tile,
            halo=self.halo,
            batch_size=self.batch_size,
            multiple=SIZE_MULTIPLE,
            on_progress=on_progress,
        )

    def _network_float(self, images: np.ndarray, radii: np.ndarray, channel_order: str) -> np.ndarray:
        """The network's output for a batch of windows, float32 in the windows' units (0-255 for uint8), unrounded.

        A uint8-I/O graph rounds in the graph: its uint8 output, as float32.
        """
        if getattr(self.backend, "io", "float32") == "uint8":
            model_order = self.backend.io_channel_order
            if channel_order != model_order:
                images = images[..., ::-1]
            sharp = self.backend.run(np.ascontiguousarray(images), np.ascontiguousarray(radii, dtype=np.float32))
            sharp = sharp[..., ::-1] if channel_order != model_order else sharp
            return sharp.astype(np.float32)
        sharp = self.backend.run(image_to_network(images, channel_order), map_to_network(radii))
        return network_to_float(sharp, images.dtype, channel_order)

    def _deblur_levels(
        self,
        image: np.ndarray,
        blur_map: np.ndarray,
        channel_order: str,
        on_progress: OnProgress | None,
        levels: tuple[int, ...],
    ) -> np.ndarray:
        """The general path: pyramid levels (``levels``, see ``runtime.pyramid``) and/or ``strength``.

        Every coarser level runs the exact tiled path on its downscaled image and keeps only its
        correction (level-sized float32); then level 0 runs tiled at full resolution and each window is
        blended, strength-scaled and rounded on its own, so no full-size float copy is ever made.
        """
        height, width = image.shape[:2]
        tiles = self._level_tiles(height, width, levels)
        total, done = sum(tiles), 0

        def progress(offset: int) -> OnProgress | None:
            if on_progress is None:
                return None
            return lambda finished, _: on_progress(offset + finished, total)

        corrections: dict[int, np.ndarray] = {}
        for level, count in zip([level for level in levels if level > 0], tiles):
            small = pyramid.downscale(image, level)

            def run_correction(images: np.ndarray, radii: np.ndarray) -> np.ndarray:
                return self._network_float(images, radii, channel_order) - images.astype(np.float32)

            corrections[level] = run_tiled(
                [small, pyramid.level_map(blur_map, level)],
                run_correction,
                tile=self.tile,
                halo=self.halo,
                batch_size=self.batch_size,
                multiple=SIZE_MULTIPLE,
                on_progress=progress(done),
            )
            done += count
        # Pixel coordinates travel with the windows (broadcast views: no full-size arrays).
        rows = np.broadcast_to(np.arange(height, dtype=np.int32)[:, None], (height, width))
        columns = np.broadcast_to(np.arange(width, dtype=np.int32)[None, :], (height, width))

        halo = round_up(self.halo, SIZE_MULTIPLE)  # the plan's halo: only the window centres are kept

        def run_full(
            images: np.ndarray, radii: np.ndarray, window_rows: np.ndarray, window_columns: np.ndarray
        ) -> np.ndarray:
            rows_kept = slice(halo, images.shape[1] - halo)
            columns_kept = slice(halo, images.shape[2] - halo)
            weights = pyramid.level_weights(radii[:, rows_kept, columns_kept], self.max_radius_px)
            value = images.astype(np.float32)  # windows whose centre has no level-0 weight skip the network
            needed = weights[0].reshape(len(images), -1).max(axis=1) > 0
            if needed.any():
                value[needed] = self._network_float(images[needed], radii[needed], channel_order)
            if corrections:
                for n in range(len(images)):
                    upsampled = {
                        level: pyramid.sample_bilinear(
                            correction, window_rows[n, rows_kept, 0], window_columns[n, 0, columns_kept], height, width
                        )
                        for level, correction in corrections.items()
                    }
                    value[n, rows_kept, columns_kept] = pyramid.blend(
                        value[n, rows_kept, columns_kept], images[n, rows_kept, columns_kept], weights[:, n], upsampled
                    )
            return finish_image(apply_strength(value, images, self.strength), image.dtype)

        return run_tiled(
            [image, blur_map, rows, columns],
            run_full,
            tile=self.tile,
            halo=self.halo,
            batch_size=self.batch_size,
            multiple=SIZE_MULTIPLE,
            on_progress=progress(done),
        )

    def _deblur_uint8_io(
        self, image: np.ndarray, blur_map: np.ndarray, channel_order: str, on_progress: OnProgress | None
    ) -> np.ndarray:
        """A uint8-I/O model (``svbr export --io uint8``): raw uint8 windows and radii in px go straight in.

        Normalisation, layout, rounding and clipping happen in the graph. A float32
        image is converted to uint8 once (and the result back), so it gets uint8 precision.
        """
        model_order = self.backend.io_channel_order
        source = image if image.dtype == np.uint8 else np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)

        def run_batch(images: np.ndarray, radii: np.ndarray) -> np.ndarray:
            if channel_order != model_order:
                images = images[..., ::-1]
            sharp = self.backend.run(np.ascontiguousarray(images), np.ascontiguousarray(radii, dtype=np.float32))
            return sharp[..., ::-1] if channel_order != model_order else sharp

        sharp = run_tiled(
            [source, blur_map],
            run_batch,
            tile=self.tile,
            halo=self.halo,
            batch_size=self.batch_size,
            multiple=SIZE_MULTIPLE,
            on_progress=on_progress,
        )
        return sharp if image.dtype == np.uint8 else sharp.astype(np.float32) / np.float32(255)

    def stream(
        self, source: object, sink: object = "null://", *, blur_map: object = None, **options: object
    ) -> StreamStats:
        """Deblur a video stream: source → deblur → sink in three threads (see ``runtime.stream``).

        Args:
            source: a name (video file, image folder/glob/``%06d`` pattern, ``/dev/video0``, ``rtsp://…``,
                ``gst:…``, ``csi://0``, ``testsrc://…``), an object with ``read()``, or an iterable of frames.
            sink: a name (``out.mkv``/``.mp4``/``.avi``, ``out/``, ``out/%06d.png``, ``null://``, ``gst:…``),
                a callable ``fn(result)`` or an object with ``write(image)``.
            blur_map: a radius, an H×W map (array, ``.npy``, PNG with ``map_scale``), an N×H×W array/``.npy``, a
                folder of maps, a 16-bit map video, a callable ``fn(frame) -> map``, ``"estimate[:K]"``;
                ``None`` = estimated per frame.
            options: see :class:`runtime.stream.StreamRunner` (``drop``, ``queue``, timeouts, ``size``, ...).

        Returns:
            :class:`runtime.stream.StreamStats`. Raises ``SourceError``, ``SinkError``, ``MapError`` or
            ``DeblurError`` (naming the source and frame) after the output has been finalised.
        """
        from runtime.stream import run_stream

        return run_stream(self, source, sink, blur_map=blur_map, **options)

    def frames(self, source: object, *, blur_map: object = None, **options: object) -> StreamRunner:
        """Iterator form of :meth:`stream`: ``for image, sharp in deblurrer.frames(source, blur_map=...)``.

        Yields :class:`runtime.stream.Deblurred` (``index``, ``image``, ``sharp``, ``blur_map``, ...),
        which unpacks as ``(image, sharp)``. Use it in a ``with`` block (or leave the loop) to stop
        the threads; ``.stats`` holds the :class:`StreamStats`.
        """
        from runtime.stream import StreamRunner

        return StreamRunner(self, source, None, blur_map=blur_map, **options)

    def close(self) -> None:
        """Release the backend."""
        self.backend.close()

    def __enter__(self) -> Deblurrer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Deblurrer(backend={self.backend!r}, tile={self.tile}, halo={self.halo}, batch_size={self.batch_size}, "
            f"strength={self.strength:g}, max_radius_px={self.max_radius_px:g})"
        )
