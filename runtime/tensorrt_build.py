"""``svbr build-engine``: a TensorRT engine from a precision-baked ONNX model, cached.

    svbr build-engine --model svbrnet_int8.onnx -o svbrnet_int8.engine --tile 512 --max-batch 4

The network is built strongly typed (SPEC §6): TensorRT takes every tensor's
type from the graph, so the FP16 or INT8 (QDQ) graph of ``svbr calibrate``
decides the precision; there are no precision flags. The same code path serves
TensorRT 10 (JetPack 6, where strong typing is an opt-in creation flag) and
TensorRT 11 (where it is the only mode and the flag is accepted and ignored).

Around the build:

* one optimisation profile, derived from the runtime's tile plan
  (:func:`optimisation_profile`): the windows ``Deblurrer(tile=T, halo=H)`` feeds
  are ``T + 2H`` px (every axis rounded up to a multiple of 4) for tiles inside a
  photo, down to ``4 + 2H`` for a photo smaller than one tile; batch 1 to
  ``max_batch``, optimised for full tiles at ``max_batch``;
* a persisted timing cache per TensorRT version and GPU (kernel timings reused
  across builds: a rebuild after a weight change takes seconds, not minutes);
* an engine cache keyed by the ONNX file's SHA-256, the TensorRT version, the
  GPU's name and compute capability, the profile and the builder options
  (:func:`engine_cache_key`): an unchanged request is a file copy. Each engine
  has a JSON sidecar (``ENGINE.json``) with the key's ingredients and the
  model's ``svbr.*`` metadata (precision, I/O contract), which the TensorRT
  backend reads.

This module is part of the runtime (Jetson applications build engines on the
device itself): it never imports torch or training code. TensorRT and pycuda
are imported only when a build runs; without them, :class:`TensorRTUnavailable`
says in one sentence how to install them, and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.arguments import add_device, add_model, add_output, cuda_index
from runtime.constants import HALO_PX, INPUT_IMAGE_NAME, INPUT_MAP_NAME, SIZE_MULTIPLE
from runtime.tiling import plan_tiles

#: (min, opt, max) shape of every network input.
Profile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]

#: Bump when the cache layout or what a key means changes: old entries are then never matched.
ENGINE_CACHE_FORMAT = 1

#: Default builder workspace (MiB): generous for 680×680 windows at batch 4, small next to an Orin's memory.
DEFAULT_WORKSPACE_MIB = 2048

#: Default tile (px) and largest batch: Deblurrer's defaults on a GPU.
DEFAULT_TILE_PX = 512
DEFAULT_MAX_BATCH = 4

INSTALL_HINT = (
    "TensorRT is required for this but its Python package (with pycuda) cannot be imported here: "
    "on Jetson install JetPack's TensorRT (`sudo apt install nvidia-tensorrt python3-libnvinfer`) and "
    "`pip install pycuda`; on a desktop NVIDIA GPU run `pip install tensorrt pycuda` "
    "(TensorRT's wheels come from NVIDIA's index, https://pypi.nvidia.com)."
)


class TensorRTUnavailable(RuntimeError):
    """TensorRT (or pycuda) cannot be imported; ``str()`` is one sentence saying how to install it."""


def require_tensorrt() -> Any:
    """Import and return the ``tensorrt`` module, checking that ``pycuda.driver`` imports too.

    Raises:
        TensorRTUnavailable: either import fails (including the index's stub
            package, which raises on import when it could not fetch the real one).
    """
    try:
        trt = importlib.import_module("tensorrt")
        importlib.import_module("pycuda.driver")
    except Exception as error:  # ImportError, or the stub's own errors
        raise TensorRTUnavailable(INSTALL_HINT) from error
    return trt


def tensorrt_installed() -> bool:
    """Whether ``tensorrt`` and ``pycuda`` are installed (a cheap lookup that imports nothing; never raises)."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("tensorrt", "pycuda"))
    except Exception:  # a broken finder (or a blocked import) means: not usable
        return False


def nvidia_gpu_present() -> bool:
    """Whether this machine exposes an NVIDIA GPU, judged from device nodes (imports nothing; never raises).

    Desktop/server drivers create ``/dev/nvidia0``…, Jetson's ``/dev/nvhost-ctrl-gpu``
    or ``/dev/nvgpu/igpu0``, WSL 2 ``/dev/dxg``. On Windows there are no such
    nodes: assume yes and let the backend's constructor find out.
    """
    try:
        if os.name == "nt":
            return True
        nodes = ["/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0", "/dev/dxg"]
        return bool(glob.glob("/dev/nvidia[0-9]*")) or any(os.path.exists(node) for node in nodes)
    except Exception:
        return False


# --- profile and cache key: pure functions, tested without TensorRT -------------------------


def window_shape(io: str, batch: int, channels: int, height: int, width: int) -> tuple[int, ...]:
    """An input's shape in a graph's layout: N×C×H×W (float I/O), or N×H×W×3 / N×H×W (``svbr export --io uint8``)."""
    if io == "float32":
        return batch, channels, height, width
    if io == "uint8":
        return (batch, height, width, channels) if channels == 3 else (batch, height, width)
    raise ValueError(f"io must be 'float32' or 'uint8', got {io!r}")


def window_dims(io: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(batch, height, width) of an image-input shape in the layout of ``io`` (see :func:`window_shape`)."""
    return (shape[0], shape[2], shape[3]) if io == "float32" else (shape[0], shape[1], shape[2])


def optimisation_profile(
    tile: int = DEFAULT_TILE_PX,
    halo: int = HALO_PX,
    max_batch: int = 1,
    opt_batch: int | None = None,
    io: str = "float32",
) -> Profile:
    """The shape range of the windows ``Deblurrer(tile=tile, halo=halo)`` sends to a backend.

    Derived from :func:`runtime.tiling.plan_tiles` itself, so the engine and the
    tiler cannot disagree: a tile inside a photo gives the largest window,
    ``round_up(tile, 4) + 2·round_up(halo, 4)`` px; a photo smaller than a tile
    gives a window of its own size (rounded up to 4) plus the halo, at least
    ``4 + 2·round_up(halo, 4)``. Both axes vary independently.

    Args:
        tile: tile edge (px), as passed to ``Deblurrer``.
        halo: context (px) around a tile, as ``Deblurrer`` uses (default ``HALO_PX``).
        max_batch: most windows per call (``Deblurrer``'s ``batch_size``).
        opt_batch: the batch TensorRT tunes for (default ``max_batch``).
        io: the model's I/O kind (``svbr.io`` metadata): ``float32`` or ``uint8``.

    Returns:
        ``{input name: (min, opt, max)}``, shapes in the layout of ``io`` (:func:`window_shape`);
        opt is a full tile at ``opt_batch``.
    """
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    if max_batch < 1:
        raise ValueError(f"max_batch must be >= 1, got {max_batch}")
    opt_batch = max_batch if opt_batch is None else opt_batch
    if not 1 <= opt_batch <= max_batch:
        raise ValueError(f"opt_batch must be in 1..{max_batch}, got {opt_batch}")
    largest = plan_tiles(tile, tile, tile, halo, SIZE_MULTIPLE)  # a photo of exactly one tile
    smallest = plan_tiles(1, 1, tile, halo, SIZE_MULTIPLE)  # a 1×1 photo: one 4×4 tile
    profile: Profile = {}
    for name, channels in ((INPUT_IMAGE_NAME, 3), (INPUT_MAP_NAME, 1)):
        profile[name] = (
            window_shape(io, 1, channels, smallest.window_height, smallest.window_width),
            window_shape(io, opt_batch, channels, largest.window_height, largest.window_width),
            window_shape(io, max_batch, channels, largest.window_height, largest.window_width),
        )
    return profile


def exact_profile(height: int, width: int, batch: int = 1, io: str = "float32") -> Profile:
    """A single-shape profile (e.g. full-frame validation samples of one size)."""
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height < 1 or width < 1 or batch < 1:
        raise ValueError(f"shape must be positive with H, W multiples of {SIZE_MULTIPLE}, got {batch}×{height}×{width}")
    return {
        name: (window_shape(io, batch, c, height, width),) * 3
        for name, c in ((INPUT_IMAGE_NAME, 3), (INPUT_MAP_NAME, 1))
    }


def profile_limits(profile: Profile, io: str = "float32") -> tuple[int, tuple[int, int], tuple[int, int]]:
    """(largest batch, smallest (H, W), largest (H, W)) a profile accepts, from its image input."""
    low, _, high = profile[INPUT_IMAGE_NAME]
    (_, low_h, low_w), (batch, high_h, high_w) = window_dims(io, low), window_dims(io, high)
    return batch, (low_h, low_w), (high_h, high_w)


def _canonical_profile(profile: Profile) -> dict[str, list[list[int]]]:
    return {name: [list(map(int, shape)) for shape in shapes] for name, shapes in sorted(profile.items())}


def engine_cache_key(
    onnx_sha256: str,
    trt_version: str,
    gpu_name: str,
    compute_capability: str,
    profile: Profile,
    builder_options: dict[str, Any] | None = None,
) -> str:
    """The engine cache key: 32 hex digits of SHA-256 over everything an engine depends on.

    An engine is only valid for the exact ONNX bytes, the TensorRT version
    that built it, and the GPU model (kernels are chosen per compute capability
    and timed per device), and only for inputs inside its profile; builder
    options (workspace) change which kernels are allowed.

    Args:
        onnx_sha256: hex SHA-256 of the ONNX file.
        trt_version: ``tensorrt.__version__``.
        gpu_name: e.g. ``"Orin"`` or ``"NVIDIA H100 80GB HBM3"``.
        compute_capability: ``"major.minor"``, e.g. ``"8.7"``.
        profile: from :func:`optimisation_profile`.
        builder_options: other settings that change the engine (e.g. workspace).
    """
    identity = {
        "format": ENGINE_CACHE_FORMAT,
        "onnx_sha256": onnx_sha256.lower(),
        "tensorrt": str(trt_version),
        "gpu": gpu_name.strip(),
        "compute_capability": str(compute_capability),
        "profile": _canonical_profile(profile),
        "builder": builder_options or {},
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]


def default_cache_dir() -> Path:
    """``$SVBR_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/svbr/engines`` (``~/.cache/svbr/engines``)."""
    if os.environ.get("SVBR_ENGINE_CACHE"):
        return Path(os.environ["SVBR_ENGINE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "svbr" / "engines"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def timing_cache_path(cache_dir: Path, trt_version: str, gpu_name: str, compute_capability: str) -> Path:
    """One timing cache per TensorRT version and GPU model (timings do not transfer between them)."""
    return Path(cache_dir) / f"timing-trt{_slug(trt_version)}-{_slug(gpu_name)}-sm{_slug(compute_capability)}.cache"


def sidecar_path(engine_path: Path) -> Path:
    """``MODEL.engine`` -> ``MODEL.engine.json``: the engine's metadata."""
    return Path(str(engine_path) + ".json")


def read_engine_metadata(engine_path: Path) -> dict[str, Any]:
    """The sidecar written by :func:`build_engine` (empty when the engine was built elsewhere)."""
    path = sidecar_path(engine_path)
    return json.loads(path.read_text()) if path.is_file() else {}


def onnx_svbr_metadata(onnx_bytes: bytes) -> dict[str, str]:
    """The ``svbr.*`` metadata of an ONNX model (precision, I/O contract, provenance)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return {entry.key: entry.value for entry in model.metadata_props if entry.key.startswith("svbr.")}


# --- GPU and build: TensorRT and pycuda from here on -------------------------------------------


@dataclass(frozen=True)
class GpuInfo:
    """The device an engine is built for."""

    device_id: int
    name: str
    compute_capability: str


def query_gpu(device_id: int = 0) -> GpuInfo:
    """Name and compute capability of CUDA device ``device_id`` (via pycuda)."""
    require_tensorrt()
    import pycuda.driver as cuda

    cuda.init()
    if device_id >= cuda.Device.count():
        raise RuntimeError(f"CUDA device {device_id} does not exist ({cuda.Device.count()} found)")
    device = cuda.Device(device_id)
    major, minor = device.compute_capability()
    return GpuInfo(device_id, device.name(), f"{major}.{minor}")


class _DeviceContext:
    """Make device ``device_id``'s primary CUDA context current (TensorRT uses the current context)."""

    def __init__(self, device_id: int) -> None:
        import pycuda.driver as cuda

        cuda.init()
        self.context = cuda.Device(device_id).retain_primary_context()

    def __enter__(self) -> _DeviceContext:
        self.context.push()
        return self

    def __exit__(self, *exc: object) -> None:
        import pycuda.driver as cuda

        cuda.Context.pop()

    def release(self) -> None:
        self.context.detach()


@dataclass(frozen=True)
class BuildResult:
    """What :func:`build_engine` did.

    Attributes:
        engine_path: the engine at the requested path.
        key: its engine-cache key.
        cache_hit: True when the engine came from the cache (no build).
        seconds: wall time of the call.
        metadata: the sidecar contents.
    """

    engine_path: Path
    key: str
    cache_hit: bool
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _build_serialized(
    trt: Any, onnx_bytes: bytes, profile: Profile, workspace_mib: int, timing_cache_file: Path
) -> bytes:
    """Parse the ONNX model into a strongly typed network and build it (TensorRT 10.x and 11.x)."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # TensorRT 10: strong typing is opt-in via this flag; 11: always on, the flag is accepted and ignored
    # (and might one day be gone, hence getattr). Explicit batch is the only mode in both.
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    network = builder.create_network(0 if strongly_typed is None else 1 << int(strongly_typed))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse the ONNX model: {errors}")
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    if inputs != set(profile):
        raise RuntimeError(f"network inputs {sorted(inputs)} differ from the profile's {sorted(profile)}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
    optimisation = builder.create_optimization_profile()
    for name, (minimum, optimum, maximum) in profile.items():
        optimisation.set_shape(name, minimum, optimum, maximum)
    config.add_optimization_profile(optimisation)

    timings = timing_cache_file.read_bytes() if timing_cache_file.is_file() else b""
    cache = config.create_timing_cache(timings)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        # A cache from another device or version: start afresh rather than mix timings.
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError("TensorRT failed to build the engine (see the TensorRT log above)")
    _write_atomic(timing_cache_file, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def build_engine(
    onnx_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    profile: Profile,
    cache_dir: str | os.PathLike[str] | None = None,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    device_id: int = 0,
    rebuild: bool = False,
) -> BuildResult:
    """Build (or fetch from the engine cache) a strongly typed engine and write it to ``out_path``.

    Args:
        onnx_path: a model from ``svbr export`` or ``svbr calibrate``.
        out_path: where the engine goes; its metadata goes to ``out_path + ".json"``.
        profile: the optimisation profile (:func:`optimisation_profile`).
        cache_dir: engine and timing cache folder (default :func:`default_cache_dir`).
        workspace_mib: builder workspace limit.
        device_id: the CUDA device to build for.
        rebuild: ignore a cached engine (the timing cache is still used).

    Raises:
        TensorRTUnavailable: no TensorRT/pycuda. FileNotFoundError: no ONNX file.
        RuntimeError: parse or build failure.
    """
    start = time.perf_counter()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {onnx_path}")
    trt = require_tensorrt()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    onnx_bytes = onnx_path.read_bytes()
    onnx_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    gpu = query_gpu(device_id)
    builder_options = {"workspace_mib": workspace_mib}
    key = engine_cache_key(onnx_sha256, trt.__version__, gpu.name, gpu.compute_capability, profile, builder_options)
    cached = cache_dir / f"{key}.engine"
    metadata = {
        "key": key,
        "onnx": onnx_path.name,
        "onnx_sha256": onnx_sha256,
        "tensorrt": trt.__version__,
        "gpu": gpu.name,
        "compute_capability": gpu.compute_capability,
        "profile": _canonical_profile(profile),
        "builder": builder_options,
        "svbr": onnx_svbr_metadata(onnx_bytes),
    }
    cache_hit = cached.is_file() and not rebuild
    if cache_hit:
        engine_bytes = cached.read_bytes()
        metadata = {**read_engine_metadata(cached), **metadata}
    else:
        context = _DeviceContext(device_id)
        try:
            with context:
                engine_bytes = _build_serialized(
                    trt,
                    onnx_bytes,
                    profile,
                    workspace_mib,
                    timing_cache_path(cache_dir, trt.__version__, gpu.name, gpu.compute_capability),
                )
        finally:
            context.release()
        metadata["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        metadata["build_seconds"] = round(time.perf_counter() - start, 1)
        _write_atomic(cached, engine_bytes)
        _write_atomic(sidecar_path(cached), json.dumps(metadata, indent=1).encode())
    if out_path.resolve() != cached.resolve():
        _write_atomic(out_path, engine_bytes)
        _write_atomic(sidecar_path(out_path), json.dumps(metadata, indent=1).encode())
    return BuildResult(out_path, key, cache_hit, round(time.perf_counter() - start, 1), metadata)


def find_cached_engine(onnx_path: Path, cache_dir: Path | None = None, device_id: int = 0) -> Path | None:
    """The most recently built cached engine of this ONNX file for this TensorRT and GPU, if any.

    Lets ``TensorRTBackend`` accept the ONNX model itself once ``svbr build-engine`` has run.
    """
    trt = require_tensorrt()
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not cache_dir.is_dir():
        return None
    onnx_sha256 = hashlib.sha256(Path(onnx_path).read_bytes()).hexdigest()
    gpu = query_gpu(device_id)
    matches = []
    for sidecar in cache_dir.glob("*.engine.json"):
        try:
            entry = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        if (entry.get("onnx_sha256"), entry.get("tensorrt"), entry.get("gpu"), entry.get("compute_capability")) == (
            onnx_sha256,
            trt.__version__,
            gpu.name,
            gpu.compute_capability,
        ):
            engine = Path(str(sidecar)[: -len(".json")])
            if engine.is_file():
                matches.append((engine.stat().st_mtime, engine))
    return max(matches)[1] if matches else None


# --- command line ---------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr build-engine",
        description="Build a strongly typed TensorRT engine (10.x or 11.x) from an SVBR-Net ONNX model whose "
        "precision is baked in (svbr export / svbr calibrate), with a profile derived from the tile plan, a "
        "persisted timing cache and an engine cache.",
    )
    add_model(parser, dest="onnx", aliases=("--onnx",), required=True, help="the ONNX model (fp32, fp16 or int8)")
    add_output(parser, dest="out", type=Path, help="the engine file to write (required unless --show-profile)")
    parser.add_argument(
        "--tile",
        type=int,
        default=DEFAULT_TILE_PX,
        help=f"Deblurrer tile (px) the engine serves (default {DEFAULT_TILE_PX})",
    )
    parser.add_argument("--halo", type=int, default=HALO_PX, help=f"Deblurrer halo (px, default {HALO_PX})")
    parser.add_argument(
        "--max-batch", type=int, default=DEFAULT_MAX_BATCH, help=f"most tiles per call (default {DEFAULT_MAX_BATCH})"
    )
    parser.add_argument("--opt-batch", type=int, default=None, help="batch to optimise for (default: --max-batch)")
    parser.add_argument(
        "--workspace-mib",
        type=int,
        default=DEFAULT_WORKSPACE_MIB,
        help=f"builder workspace limit in MiB (default {DEFAULT_WORKSPACE_MIB})",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="engine + timing cache (default $SVBR_ENGINE_CACHE or ~/.cache/svbr/engines)",
    )
    add_device(
        parser, default="cuda:0", choices=("cuda",), help="CUDA device to build for: cuda, cuda:N or N (default cuda:0)"
    )
    parser.add_argument("--rebuild", action="store_true", help="build even if the engine cache has this engine")
    parser.add_argument(
        "--show-profile", action="store_true", help="print the optimisation profile and exit (needs no TensorRT)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    from runtime.backends.base import onnx_io

    parser = _parser()
    args = parser.parse_args(argv)
    # A uint8-I/O model (svbr export --io uint8) takes N×H×W×3 windows: its profile is in that layout.
    io = onnx_io(onnx_svbr_metadata(args.onnx.read_bytes()))[0] if args.onnx.is_file() else "float32"
    try:
        profile = optimisation_profile(args.tile, args.halo, args.max_batch, args.opt_batch, io=io)
    except ValueError as error:
        parser.error(str(error))
    if args.show_profile:
        print(json.dumps(_canonical_profile(profile), indent=1))
        return 0
    if args.out is None:
        parser.error("-o/--output is required")
    if not args.onnx.is_file():
        print(f"svbr build-engine: error: ONNX model not found: {args.onnx}", file=sys.stderr)
        return 2
    try:
        result = build_engine(
            args.onnx,
            args.out,
            profile=profile,
            cache_dir=args.cache_dir,
            workspace_mib=args.workspace_mib,
            device_id=cuda_index(args.device),
            rebuild=args.rebuild,
        )
    except TensorRTUnavailable as error:
        print(f"svbr build-engine: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as error:
        print(f"svbr build-engine: error: {error}", file=sys.stderr)
        return 1
    how = "from the engine cache" if result.cache_hit else "built"
    precision = result.metadata.get("svbr", {}).get("svbr.precision", "?")
    print(
        f"wrote {result.engine_path} ({how} in {result.seconds:.1f} s; {precision}; "
        f"TensorRT {result.metadata['tensorrt']} on {result.metadata['gpu']} "
        f"sm{result.metadata['compute_capability']}; key {result.key})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
