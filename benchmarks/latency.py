"""Latency of SVBR-Net across backends, precisions, resolutions and tile sizes.

    python -m benchmarks.latency                                   # every backend here, default sizes
    python -m benchmarks.latency --backends torch,onnxruntime --precisions fp32,int8 \\
        --sizes 640x480,1280x720,4000x3000@512 --tiles 0 --runs 5 -o reports/benchmarks

What is timed: the whole user-facing call, ``Deblurrer.deblur(image, radius)``
with a uint8 BGR image and a float32 radius map in and a uint8 BGR image out:
validation, normalisation, tiling, the network, stitching and the conversion
back to 8 bits; wall-clock (``time.perf_counter``), after warm-up runs. Image
content does not change the time (no data-dependent paths), so inputs are random.

Every configuration (backend × precision × size × tile) runs in a fresh
Python process, so its peak RSS (``VmHWM``) is its own: imports + model +
inputs + inference, and an ONNX Runtime row does not carry torch, exactly as
a deployed runtime does not. GPU memory (CUDA rows): the process's device
memory from NVML / nvidia-smi after the runs (the allocators keep their
peak), else ``torch.cuda.max_memory_allocated``; ``null`` without a GPU.

"PyTorch eager" (backend ``torch``) is ``training.model.SVBRNet`` as trained
(BatchNorm unfolded, eval mode, ``torch.inference_mode``) behind the same
``Deblurrer``; its CPU FP32 row at the same size and tile is the baseline of
``speedup_vs_torch_eager`` (its p50 / the row's p50; > 1 = faster). Torch and
ONNX Runtime get the same thread count (``--threads``, default all cores).

Writes ``OUT/latency.json`` (machine, versions, threads, settings, skipped
configurations with reasons, ``results``: one row per configuration),
``latency.csv``, ``latency.md`` and ``latency.png`` (p50 vs megapixels, log-log).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    PRECISIONS,
    TORCH_EAGER_CPU,
    TORCH_EAGER_CUDA,
    TorchEagerBackend,
    add_model_arguments,
    current_rss_mb,
    default_checkpoint,
    default_threads,
    machine_info,
    megapixels,
    package_versions,
    parse_list,
    parse_resolution,
    parse_tile,
    peak_rss_mb,
    resolve_models,
    tile_label,
)
from runtime.arguments import add_output
from runtime.constants import SIZE_MULTIPLE
from runtime.tiling import round_up

DEFAULT_SIZES = "640x480,1280x720,1920x1080,3840x2160,4000x3000"
DEFAULT_TILES = "0,512"

#: Short names accepted by --backends.
ALIASES: dict[str, str] = {
    "pytorch": TORCH_EAGER_CPU,
    "torch-eager": TORCH_EAGER_CPU,
    "onnxruntime": "onnxruntime-cpu",
    "ort": "onnxruntime-cpu",
    "ort-cpu": "onnxruntime-cpu",
    "ort-cuda": "onnxruntime-cuda",
    "trt": "tensorrt",
}

#: Left out of "all": ONNX Runtime's TensorRT provider builds an engine per new
#: input shape at run time (minutes per shape); name it explicitly to time it.
NOT_IN_ALL = frozenset({"onnxruntime-tensorrt"})

#: Devices of the benchmark's own PyTorch-eager runners.
EAGER_DEVICES: dict[str, str] = {TORCH_EAGER_CPU: "cpu", TORCH_EAGER_CUDA: "cuda"}

#: Marks the worker's result line on stdout (anything else there is chatter).
RESULT_MARKER = "SVBR_LATENCY_RESULT "

#: Columns of latency.csv (and the keys every result row has), in order.
CSV_COLUMNS: tuple[str, ...] = (
    "backend",
    "precision",
    "model_precision",
    "device",
    "size",
    "width",
    "height",
    "megapixels",
    "tile",
    "tiles",
    "halo",
    "batch_size",
    "warmup",
    "runs",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "mean_ms",
    "min_ms",
    "fps",
    "mp_per_s",
    "peak_rss_mb",
    "rss_before_runs_mb",
    "gpu_memory_mb",
    "gpu_memory_method",
    "speedup_vs_torch_eager",
    "threads",
    "torch_threads",
    "onnxruntime_intra_op_threads",
    "model",
)


# --- what to run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """One measurement: a backend at a precision on one image size and tile size."""

    backend: str
    precision: str
    model: str | None  # model file; None = random-init eager weights
    options: dict[str, Any]  # backend constructor options (threads, half)
    width: int
    height: int
    tile: int | None  # None = one full-frame pass
    halo: int | None  # None = the runtime's default (HALO_PX)
    batch_size: int | None  # None = the backend's preferred batch size
    warmup: int
    runs: int
    max_seconds: float
    threads: int
    seed: int = 0

    @property
    def label(self) -> str:
        return f"{self.backend} {self.precision} {self.width}x{self.height} tile {tile_label(self.tile)}"


def registry_backends() -> list[str]:
    """Registered runtime backends (the registry grows as backends are added)."""
    from runtime.backends import BACKENDS

    return list(BACKENDS)


def expand_backends(requested: list[str]) -> list[str]:
    """Resolve aliases and ``all``; PyTorch eager first, so its baseline exists when others print."""
    names: list[str] = []
    for name in requested:
        if name == "all":
            expanded = [TORCH_EAGER_CPU, TORCH_EAGER_CUDA, *(n for n in registry_backends() if n not in NOT_IN_ALL)]
        else:
            expanded = [ALIASES.get(name, name)]
        names += [n for n in expanded if n not in names]
    return sorted(names, key=lambda n: (n not in EAGER_DEVICES, names.index(n)))


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run on this machine, or ``None`` when it can."""
    if name in EAGER_DEVICES:
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        if EAGER_DEVICES[name] == "cuda":
            import torch  # only here: the CPU check must not cost the parent a torch import

            if not torch.cuda.is_available():
                return "torch sees no CUDA device"
        return None
    from runtime.backends import BACKENDS

    if name not in BACKENDS:
        return f"unknown backend (registered: {', '.join(BACKENDS)}; plus {TORCH_EAGER_CPU}, {TORCH_EAGER_CUDA})"
    spec = BACKENDS[name]
    try:
        cls = spec.load_class()
    except ImportError as error:
        return f"library not installed: {error}"
    if not cls.is_available(**spec.options):
        return "not available on this machine (library, provider or device missing)"
    return None


def parse_sizes(text: str, tiles: list[int | None]) -> list[tuple[tuple[int, int], list[int | None]]]:
    """'640x480,4000x3000@512' -> [((640, 480), tiles), ((4000, 3000), [512])].

    ``WxH@TILE`` times that size at that tile only (0 = full frame), e.g. a
    12 MP frame tiled without also timing it full frame; entries of one size merge.
    """
    sizes: dict[tuple[int, int], list[int | None]] = {}
    for item in parse_list(text):
        resolution, at, tile = item.partition("@")
        own = [parse_tile(tile)] if at else tiles
        merged = sizes.setdefault(parse_resolution(resolution), [])
        merged += [t for t in own if t not in merged]
    return list(sizes.items())


def parse_model_overrides(items: list[str]) -> dict[tuple[str, str], str]:
    """['tensorrt:fp16=m.engine'] -> {('tensorrt', 'fp16'): 'm.engine'}."""
    overrides: dict[tuple[str, str], str] = {}
    for item in items:
        key, sep, path = item.partition("=")
        backend, colon, precision = key.partition(":")
        if not sep or not colon or precision not in PRECISIONS:
            raise argparse.ArgumentTypeError(f"--model must look like BACKEND:PRECISION=PATH, got {item!r}")
        overrides[(ALIASES.get(backend, backend), precision)] = path
    return overrides


def parse_max_mp(items: list[str]) -> dict[str, float]:
    """['torch=2.1', 'ort:fp16=1'] -> {'torch': 2.1, 'onnxruntime-cpu:fp16': 1.0}: largest image (MP) timed."""
    limits: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        backend, colon, precision = key.partition(":")
        try:
            limit = float(value)
        except ValueError:
            limit = None
        if not sep or limit is None or (colon and precision not in PRECISIONS):
            raise argparse.ArgumentTypeError(f"--max-mp must look like BACKEND[:PRECISION]=MP, got {item!r}")
        limits[ALIASES.get(backend, backend) + (f":{precision}" if colon else "")] = limit
    return limits


def size_limit(limits: dict[str, float], backend: str, precision: str) -> tuple[str, float] | None:
    """The --max-mp entry that applies to ``backend`` at ``precision`` (the precise one first)."""
    for key in (f"{backend}:{precision}", backend):
        if key in limits:
            return key, limits[key]
    return None


def model_kind(name: str) -> str:
    """What a backend loads: ``"onnx"``, ``"checkpoint"`` (PyTorch ``.pt``) or ``"other"`` (e.g. engines only).

    Read from the backend class's ``model_suffixes`` (ONNX when it declares none).
    """
    if name in EAGER_DEVICES:
        return "checkpoint"
    from runtime.backends import BACKENDS

    suffixes = getattr(BACKENDS[name].load_class(), "model_suffixes", (".onnx",))
    if ".onnx" in suffixes:
        return "onnx"
    if ".pt" in suffixes or ".pth" in suffixes:
        return "checkpoint"
    return "other"


def constructor_options(name: str) -> set[str]:
    """Option names a backend's constructor declares (e.g. ``threads``, ``half``)."""
    if name in EAGER_DEVICES:
        return set(inspect.signature(TorchEagerBackend.__init__).parameters)
    from runtime.backends import BACKENDS

    return set(inspect.signature(BACKENDS[name].load_class().__init__).parameters)


def backend_options(name: str, precision: str, threads: int) -> dict[str, Any]:
    """Constructor options for one row: only those the constructor declares.

    The thread count goes to every backend that takes one (ONNX Runtime CPU,
    PyTorch eager), so both sides of the comparison use the same cores; GPU
    backends take none. A checkpoint backend with a ``half`` switch (torch-cuda)
    is told the precision; ONNX backends take it from the model file.
    """
    declared = constructor_options(name)
    options: dict[str, Any] = {}
    if "threads" in declared:
        options["threads"] = threads
    if "half" in declared:
        options["half"] = precision == "fp16"
    return options


def row_model(
    name: str, precision: str, overrides: dict[tuple[str, str], str], models: Any, checkpoint: Path | None
) -> tuple[str | None, str | None]:
    """(model file, None) for one backend and precision, or (None, why it is skipped)."""
    if (name, precision) in overrides:
        return overrides[(name, precision)], None
    kind = model_kind(name)
    has_checkpoint = checkpoint is not None and checkpoint.is_file()
    if name in EAGER_DEVICES:
        supported = TorchEagerBackend.precisions(EAGER_DEVICES[name])
        if precision not in supported:
            return None, f"PyTorch eager on {EAGER_DEVICES[name]} runs {'/'.join(supported)} only"
        return (str(checkpoint) if has_checkpoint else None), None  # None: random weights, same timing
    if kind == "checkpoint":
        if precision == "int8" or (precision == "fp32" and "half" not in constructor_options(name)):
            return None, f"{name} runs PyTorch checkpoints in fp16/fp32 only; int8 needs an ONNX or TensorRT backend"
        if not has_checkpoint:
            return None, f"{name} needs the PyTorch checkpoint (--weights; {checkpoint} not found)"
        return str(checkpoint), None
    if kind == "other":
        return None, f"{name} needs a model file: pass --model {name}:{precision}=PATH"
    if precision in models.paths:
        return str(models.paths[precision]), None
    return None, models.missing.get(precision, f"{precision}: no model")


def plan(args: argparse.Namespace, out_dir: Path) -> tuple[list[Config], list[dict[str, Any]], list[str]]:
    """Every configuration to time, the ones skipped (with reasons) and notes."""
    skipped: list[dict[str, Any]] = []

    def skip(
        backend: str, precision: str | None, reason: str, size: str | None = None, tile: int | None = None
    ) -> None:
        skipped.append({"backend": backend, "precision": precision, "size": size, "tile": tile, "reason": reason})

    backends = expand_backends(parse_list(args.backends))
    precisions = parse_list(args.precisions)
    for precision in precisions:
        if precision not in PRECISIONS:
            raise SystemExit(f"latency: error: unknown precision {precision!r}; choose from {PRECISIONS}")
    tiles = [parse_tile(t) for t in parse_list(args.tiles)]
    sizes = parse_sizes(args.sizes, tiles)
    overrides = parse_model_overrides(args.model or [])
    limits = parse_max_mp(args.max_mp or [])
    checkpoint = args.checkpoint if args.checkpoint is not None else default_checkpoint()

    available = []
    for name in backends:
        reason = unavailable_reason(name)
        if reason is None:
            available.append(name)
        else:
            skip(name, None, reason)
    onnx_wanted = [p for p in precisions if any(model_kind(n) == "onnx" and (n, p) not in overrides for n in available)]
    models = resolve_models(args.model_fp32, args.model_fp16, args.model_int8, checkpoint, out_dir, onnx_wanted)
    notes = list(models.notes)
    if any(n in EAGER_DEVICES for n in available) and (checkpoint is None or not checkpoint.is_file()):
        notes.append(
            f"PyTorch eager uses random weights (checkpoint {checkpoint} not found): "
            "latency does not depend on the weights"
        )

    configs: list[Config] = []
    for name in available:
        for precision in precisions:
            model, reason = row_model(name, precision, overrides, models, checkpoint)
            if reason is not None:
                skip(name, precision, reason)
                continue
            options = backend_options(name, precision, args.threads)
            for (width, height), size_tiles in sizes:
                mp = megapixels(width, height)
                for tile in size_tiles:
                    limit = size_limit(limits, name, precision)
                    if limit is not None and mp > limit[1]:
                        skip(name, precision, f"above --max-mp {limit[0]}={limit[1]:g} MP", f"{width}x{height}", tile)
                    elif tile is None and mp > args.full_frame_max_mp:
                        skip(
                            name,
                            precision,
                            f"full frame above --full-frame-max-mp {args.full_frame_max_mp:g} MP "
                            "(memory grows with the frame); the tiled rows cover this size",
                            f"{width}x{height}",
                            tile,
                        )
                    else:
                        configs.append(
                            Config(
                                name,
                                precision,
                                model,
                                options,
                                width,
                                height,
                                tile,
                                args.halo,
                                args.batch_size,
                                args.warmup,
                                args.runs,
                                args.max_config_seconds,
                                args.threads,
                            )
                        )
    return configs, skipped, notes


# --- the worker: one configuration in a fresh process ------------------------------------------


def load_backend(config: Config) -> Any:
    """The runner ``config`` names, loaded in this (worker) process."""
    if config.backend in EAGER_DEVICES:
        path = Path(config.model) if config.model else None
        return TorchEagerBackend(path, EAGER_DEVICES[config.backend], config.precision, **config.options)
    from runtime.backends import create_backend

    return create_backend(config.backend, config.model, **config.options)


def gpu_memory_mb(device: str) -> tuple[float | None, str | None]:
    """Device memory this process holds (MB) and how it was read; (None, None) off the GPU."""
    if not device.startswith("cuda"):
        return None, None
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        index = int(device.partition(":")[2] or 0)
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == os.getpid() and process.usedGpuMemory:
                return process.usedGpuMemory / 1e6, "nvml process memory after runs"
    except Exception:  # noqa: BLE001  # no pynvml, no permission, containerised PIDs: try the next way
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout
            for line in out.splitlines():
                pid, _, used = line.partition(",")
                if pid.strip() == str(os.getpid()):
                    return float(used) * 1.048576, "nvidia-smi process memory after runs"  # MiB -> MB
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return torch.cuda.max_memory_allocated() / 1e6, "torch.cuda.max_memory_allocated (tensors only)"
    return None, None


def warmup_crop(config: Config, batch_size: int) -> tuple[int, int]:
    """Size (H, W) of the image each warm-up run deblurs.

    Full frame: the whole image (its one window is the shape to warm up).
    Tiled: a crop holding one batch of tiles. Every window of a tiled run has
    the same shape, so one batch warms up the same kernels and buffers as a
    whole 12 MP frame would, in a fraction of the time.
    """
    if config.tile is None:
        return config.height, config.width
    tile = round_up(config.tile, SIZE_MULTIPLE)
    return min(config.height, tile), min(config.width, tile * batch_size)


def time_calls(call: Any, count: int) -> list[float]:
    """Wall-clock ms of ``count`` calls (deblur returns host arrays, so GPU work is finished)."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def measure(config: Config) -> dict[str, Any]:
    """Time one configuration in this process and return its result row (see ``CSV_COLUMNS``)."""
    from runtime.deblurrer import Deblurrer

    backend = load_backend(config)
    deblurrer = Deblurrer(backend=backend, tile=config.tile, halo=config.halo, batch_size=config.batch_size)
    rng = np.random.default_rng(config.seed)
    image = rng.integers(0, 256, (config.height, config.width, 3), dtype=np.uint8)
    radius = rng.uniform(0.0, 6.0, (config.height, config.width)).astype(np.float32)
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
    rss_before = current_rss_mb()

    def call() -> None:
        deblurrer.deblur(image, radius)

    crop_height, crop_width = warmup_crop(config, deblurrer.batch_size)
    warm_image, warm_radius = image[:crop_height, :crop_width], radius[:crop_height, :crop_width]
    time_calls(lambda: deblurrer.deblur(warm_image, warm_radius), config.warmup)
    # Bound the time per configuration: a slow one (torch eager at 12 MP) gets fewer runs, never zero.
    times = time_calls(call, 1)
    remaining = config.runs - 1
    if remaining > 0:
        per_run_ms = max(times[0], 1e-3)
        affordable = int(max(0.0, config.max_seconds * 1e3 - per_run_ms) / per_run_ms)
        times += time_calls(call, min(remaining, affordable))
    p50, p90, p99 = (float(v) for v in np.percentile(times, [50, 90, 99]))
    mp = megapixels(config.width, config.height)
    gpu_mb, gpu_method = gpu_memory_mb(backend.device)
    row = {
        "backend": config.backend,
        "precision": config.precision,
        "model_precision": backend.precision,
        "device": backend.device,
        "size": f"{config.width}x{config.height}",
        "width": config.width,
        "height": config.height,
        "megapixels": round(mp, 4),
        "tile": config.tile,
        "tiles": deblurrer.count_tiles(config.height, config.width),
        "halo": deblurrer.halo,
        "batch_size": deblurrer.batch_size,
        "warmup": config.warmup,
        "runs": len(times),
        "p50_ms": round(p50, 3),
        "p90_ms": round(p90, 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(float(np.mean(times)), 3),
        "min_ms": round(float(np.min(times)), 3),
        "fps": round(1e3 / p50, 4),
        "mp_per_s": round(mp / (p50 / 1e3), 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_runs_mb": None if rss_before is None else round(rss_before, 1),
        "gpu_memory_mb": None if gpu_mb is None else round(gpu_mb, 1),
        "gpu_memory_method": gpu_method,
        "speedup_vs_torch_eager": None,  # filled in by the parent, which sees every row
        "threads": config.threads,
        "torch_threads": sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None,
        "onnxruntime_intra_op_threads": config.options.get("threads") if config.backend == "onnxruntime-cpu" else None,
        "model": str(backend.model_path),
        "times_ms": [round(t, 3) for t in times],
    }
    deblurrer.close()
    return row


def worker_main(config_json: str) -> int:
    """Entry of the per-configuration process: measure, print the row after ``RESULT_MARKER``."""
    config = Config(**json.loads(config_json))
    row = measure(config)
    sys.stdout.write(RESULT_MARKER + json.dumps(row) + "\n")
    return 0


def run_in_subprocess(config: Config, timeout: float | None) -> dict[str, Any]:
    """Measure ``config`` in a fresh interpreter; raises RuntimeError with its stderr tail on failure."""
    command = [sys.executable, "-m", "benchmarks.latency", "--worker", json.dumps(asdict(config))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {timeout:g} s (--config-timeout)") from None
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    lines = (done.stderr or done.stdout).strip().splitlines()
    raise RuntimeError(f"worker exited with {done.returncode}: {lines[-1] if lines else 'no output'}")


# --- why a precision is (not) faster: what ONNX Runtime actually runs ---------------------------


def onnxruntime_cpu_graph(model: Path, threads: int) -> dict[str, dict[str, int]]:
    """What ONNX Runtime's CPU provider runs, after its own optimisations.

    Returns ``{"operators": {op: count}, "weights": {element type: count}}``.

    This is what explains the FP16 and INT8 rows on a CPU: without FP16
    arithmetic ORT turns an FP16 graph back into FP32 convolutions, and an
    INT8 (QDQ) graph becomes QLinearConv etc. only where a quantised kernel exists.
    """
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # ORT warns that the saved graph is machine-specific: that is the point
        options.optimized_model_filepath = str(Path(folder) / "optimized.onnx")
        ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath, load_external_data=False).graph

    def count(names: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda item: -item[1]))

    return {
        "operators": count([node.op_type for node in graph.node]),
        "weights": count([onnx.TensorProto.DataType.Name(t.data_type).lower() for t in graph.initializer]),
    }


def graph_notes(configs: list[Config], threads: int) -> dict[str, dict[str, dict[str, int]]]:
    """``{precision: onnxruntime_cpu_graph(...)}`` for every ONNX model the onnxruntime-cpu rows time."""
    graphs: dict[str, dict[str, dict[str, int]]] = {}
    for config in configs:
        if config.backend == "onnxruntime-cpu" and config.precision not in graphs and config.model:
            try:
                graphs[config.precision] = onnxruntime_cpu_graph(Path(config.model), threads)
            except Exception as error:  # noqa: BLE001  # a diagnostic only: never fail the benchmark for it
                graphs[config.precision] = {"error": {str(error): 0}}
    return graphs


# --- the report ---------------------------------------------------------------------------------


def add_speedups(rows: list[dict[str, Any]]) -> str | None:
    """Fill ``speedup_vs_torch_eager`` (baseline p50 / row p50, same size and tile); returns the baseline.

    The baseline is PyTorch eager FP32 on the CPU; where this run has none (a
    GPU-only run), PyTorch eager FP32 on CUDA.
    """
    for baseline in (TORCH_EAGER_CPU, TORCH_EAGER_CUDA):
        reference = {
            (r["size"], r["tile"]): r["p50_ms"] for r in rows if r["backend"] == baseline and r["precision"] == "fp32"
        }
        if reference:
            for row in rows:
                base = reference.get((row["size"], row["tile"]))
                row["speedup_vs_torch_eager"] = None if base is None else round(base / row["p50_ms"], 3)
            return f"{baseline} fp32"
    return None


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "tile": tile_label(row["tile"])})


def _fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def summary_table(rows: list[dict[str, Any]]) -> list[str]:
    """Markdown pivot: one line per backend/precision/tile, one column per size; p50 ms (speed-up)."""
    sizes = list(dict.fromkeys(r["size"] for r in sorted(rows, key=lambda r: r["megapixels"])))
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for r in rows:
        speedup = "" if r["speedup_vs_torch_eager"] is None else f" ({r['speedup_vs_torch_eager']:.2f}×)"
        key = (r["backend"], r["precision"], tile_label(r["tile"]))
        cells.setdefault(key, {})[r["size"]] = f"{r['p50_ms']:.0f}{speedup}"
    lines = [
        "| backend | precision | tile | " + " | ".join(sizes) + " |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in sizes) + " |",
    ]
    for (backend, precision, tile), by_size in cells.items():
        lines.append(
            f"| {backend} | {precision} | {tile} | " + " | ".join(by_size.get(size, "—") for size in sizes) + " |"
        )
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """latency.md: setup, the table, skipped configurations, notes."""
    machine, threads = report["machine"], report["threads"]
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items() if v)
    lines = [
        "# SVBR-Net latency",
        "",
        f"Machine: {machine['cpu']}, {machine['usable_cpus']} usable cores, {machine['memory_gb']} GB RAM"
        + (f", GPU {'; '.join(machine['gpus'])}" if machine["gpus"] else ", no GPU")
        + (f", board {machine['board']}" if machine.get("board") else "")
        + f"; load average at start {machine['load_average_at_start']}, at end {report['load_average_at_end']}.",
        f"Versions: {versions}.",
        f"Threads: {threads['requested']} for PyTorch and ONNX Runtime (os.cpu_count() = {threads['os_cpu_count']}).",
        f"Timed: `Deblurrer.deblur` end to end (uint8 BGR in, uint8 out, incl. tiling), "
        f"{report['settings']['warmup']} warm-up + up to {report['settings']['runs']} runs per row; "
        f"halo {report['results'][0]['halo'] if report['results'] else '—'} px. "
        "Peak RSS: a fresh process per row (imports + model + data + inference).",
        f"Speed-up: {report['baseline'] or 'no PyTorch eager baseline in this run'} p50 / row p50, same size and tile.",
        "",
        "p50 latency per frame in ms (speed-up over PyTorch eager):",
        "",
        *summary_table(report["results"]),
        "",
        "All rows:",
        "",
        "| backend | precision | size | tile | tiles | runs | p50 ms | p90 ms | p99 ms | fps | MP/s "
        "| peak RSS MB | GPU MB | vs PyTorch eager |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['backend']} | {r['precision']} | {r['size']} | {tile_label(r['tile'])} | {r['tiles']} | {r['runs']} "
            f"| {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | {r['fps']:.3g} | {r['mp_per_s']:.3g} "
            f"| {_fmt(r['peak_rss_mb'], 0)} | {_fmt(r['gpu_memory_mb'], 0)} "
            f"| {_fmt(r['speedup_vs_torch_eager'], 2, '×')} |"
        )
    if report["skipped"]:
        lines += ["", "Skipped:", ""]
        for s in report["skipped"]:
            what = " ".join(str(p) for p in (s["backend"], s["precision"], s["size"]) if p)
            tile = f" tile {tile_label(s['tile'])}" if s["size"] else ""
            lines.append(f"- {what}{tile}: {s['reason']}")
    if report["failed"]:
        lines += ["", "Failed:", ""] + [f"- {f['config']}: {f['error']}" for f in report["failed"]]
    if report["onnxruntime_cpu_graphs"]:
        lines += [
            "",
            "What onnxruntime-cpu runs (operators after its graph optimisations; "
            f"CPU flags: {', '.join(machine['cpu_flags']) or 'none of interest'}):",
            "",
        ]
        for precision, graph in report["onnxruntime_cpu_graphs"].items():
            if "error" in graph:
                lines.append(f"- {precision}: not inspected ({next(iter(graph['error']))})")
                continue
            lines.append(
                f"- {precision}: "
                + ", ".join(f"{n} {op}" for op, n in graph["operators"].items())
                + "; weights "
                + ", ".join(f"{n} {kind}" for kind, n in graph["weights"].items())
            )
    if report["notes"]:
        lines += ["", "Notes:", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """latency.png: p50 (ms) against image size (MP), one line per backend/precision/tile, log-log."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in rows:
        series.setdefault((f"{r['backend']} {r['precision']}", tile_label(r["tile"])), []).append(
            (r["megapixels"], r["p50_ms"])
        )
    # One colour per backend/precision, one line style per tile size.
    colours = {name: f"C{i % 10}" for i, name in enumerate(dict.fromkeys(name for name, _ in series))}
    styles = {tile: style for tile, style in zip(dict.fromkeys(t for _, t in series), ["-", "--", ":", "-."] * 4)}
    for (name, tile), points in series.items():
        points.sort()
        axes.plot(*zip(*points), marker="o", color=colours[name], linestyle=styles[tile], label=f"{name}, tile {tile}")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("image size (megapixels)")
    axes.set_ylabel("p50 latency per frame (ms), end to end")
    axes.set_title(title, fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    if series:
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_outputs(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latency.json").write_text(json.dumps(report, indent=1))
    write_csv(report["results"], out_dir / "latency.csv")
    (out_dir / "latency.md").write_text(to_markdown(report))
    machine = report["machine"]
    plot(
        report["results"],
        out_dir / "latency.png",
        f"SVBR-Net latency, {machine['cpu']} ({machine['usable_cpus']} cores)"
        + (f", {machine['gpus'][0]}" if machine["gpus"] else ""),
    )


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.latency",
        description=__doc__.split("\n\n")[0] + " Times Deblurrer.deblur end to end; one fresh process per row.",
    )
    parser.add_argument(
        "--backends",
        default="all",
        help="comma list: torch (PyTorch eager, CPU: the baseline), torch-eager-cuda, any registry "
        "name (onnxruntime-cpu, onnxruntime-cuda, tensorrt, torch-cuda, ...) or a short name "
        f"({', '.join(f'{k}={v}' for k, v in ALIASES.items())}); 'all' = every one but "
        f"{', '.join(sorted(NOT_IN_ALL))}. Unavailable ones are listed as skipped (default: all)",
    )
    parser.add_argument(
        "--precisions", default=",".join(PRECISIONS), help="comma list of fp32, fp16, int8 (default: all three)"
    )
    parser.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help="comma list of WIDTHxHEIGHT; WIDTHxHEIGHT@TILE times that size at that tile only "
        f"(default: {DEFAULT_SIZES})",
    )
    parser.add_argument(
        "--tiles",
        default=DEFAULT_TILES,
        help=f"comma list of tile edges in px for every size; 0 = full frame (default: {DEFAULT_TILES})",
    )
    parser.add_argument("--halo", type=int, help="context px around each tile (default: the runtime's 84)")
    parser.add_argument("--batch-size", type=int, help="tiles per backend call (default: the backend's preferred)")
    parser.add_argument(
        "--runs",
        type=int,
        default=10,
        help="timed runs per configuration, fewer where --max-config-seconds says so (default: 10)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs first (allocations, kernel selection); tiled rows warm up on one "
        "batch of tiles, which has the timed run's window shape (default: 1)",
    )
    parser.add_argument(
        "--max-config-seconds",
        type=float,
        default=120.0,
        help="cut the timed runs of a slow configuration to about this many seconds, keeping >= 1 (default: 120)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help="CPU threads for PyTorch and ONNX Runtime alike (default: all usable cores)",
    )
    parser.add_argument(
        "--full-frame-max-mp",
        type=float,
        default=2.1,
        help="skip full-frame (tile 0) rows above this many MP: activations grow with the frame "
        "(default: 2.1, i.e. up to 1920x1080)",
    )
    parser.add_argument(
        "--max-mp",
        action="append",
        metavar="BACKEND[:PRECISION]=MP",
        help="skip BACKEND (at PRECISION) above MP megapixels (repeatable), e.g. torch=2.1 "
        "or onnxruntime:fp16=2.1 to spare slow rows",
    )
    parser.add_argument(
        "--model",
        action="append",
        metavar="BACKEND:PRECISION=PATH",
        help="model file for one backend and precision (repeatable), e.g. "
        "tensorrt:fp16=models/svbrnet_fp16.engine; default: the precision's ONNX model",
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--config-timeout", type=float, help="kill a configuration's process after this many s (default: no limit)"
    )
    add_output(
        parser,
        dest="out",
        type=Path,
        default=Path("reports/benchmarks"),
        help="output folder (default: reports/benchmarks)",
    )
    parser.add_argument("--list", action="store_true", help="print the configurations and skips; measure nothing")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one configuration, JSON
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        print("latency: error: --runs and --threads must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    machine = machine_info()
    configs, skipped, notes = plan(args, args.out)
    print(
        f"latency: {len(configs)} configurations on {machine['cpu']} ({machine['usable_cpus']} cores), "
        f"threads: {args.threads}; writing {args.out}",
        flush=True,
    )
    for s in skipped:
        where = f" {s['size']} tile {tile_label(s['tile'])}" if s["size"] else ""
        print(f"  skip {s['backend']}{' ' + s['precision'] if s['precision'] else ''}{where}: {s['reason']}")
    for note in notes:
        print(f"  note: {note}")
    if args.list:
        for index, config in enumerate(configs, 1):
            print(f"[{index}/{len(configs)}] {config.label}: {config.model or 'random weights'} {config.options}")
        return 0

    graphs = graph_notes(configs, args.threads)
    rows: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    for index, config in enumerate(configs, 1):
        try:
            row = run_in_subprocess(config, args.config_timeout)
        except RuntimeError as error:
            failed.append({"config": config.label, "error": str(error)})
            print(f"[{index}/{len(configs)}] {config.label}: FAILED {error}", flush=True)
            continue
        rows.append(row)
        add_speedups(rows)
        speedup = row["speedup_vs_torch_eager"]
        print(
            f"[{index}/{len(configs)}] {config.label}: p50 {row['p50_ms']:.1f} ms (runs: {row['runs']}), "
            f"{row['fps']:.3g} fps, {row['mp_per_s']:.3g} MP/s, peak RSS {row['peak_rss_mb']:.0f} MB"
            + (f", {speedup:.2f}× vs PyTorch eager" if speedup else ""),
            flush=True,
        )

    report = {
        "machine": machine,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "versions": package_versions(),
        "threads": {
            "requested": args.threads,
            "os_cpu_count": os.cpu_count(),
            "torch_num_threads": args.threads,
            "onnxruntime_intra_op_threads": args.threads,
        },
        "settings": {
            "backends": args.backends,
            "precisions": args.precisions,
            "sizes": args.sizes,
            "tiles": args.tiles,
            "halo": args.halo,
            "batch_size": args.batch_size,
            "runs": args.runs,
            "warmup": args.warmup,
            "max_config_seconds": args.max_config_seconds,
            "full_frame_max_mp": args.full_frame_max_mp,
            "timing": "Deblurrer.deblur end to end: uint8 BGR in, uint8 out, incl. tiling",
            "peak_rss": "VmHWM of a fresh process per configuration (imports + model + data + inference)",
        },
        "baseline": add_speedups(rows),
        "skipped": skipped,
        "failed": failed,
        "notes": notes,
        "onnxruntime_cpu_graphs": graphs,
        "results": rows,
    }
    write_outputs(report, args.out)
    print(f"wrote {args.out}/latency.json, latency.csv, latency.md, latency.png")
    if not rows:
        print("latency: error: nothing was measured (see the skipped and failed configurations above)", file=sys.stderr)
    return 1 if failed or not rows else 0  # the files are written either way; they list what was left out


if __name__ == "__main__":
    sys.exit(main())
