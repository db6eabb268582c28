"""Helpers shared by the benchmark scripts: model files per precision, PyTorch eager, machine facts.

Nothing here imports torch at module level: a benchmark worker that times an
ONNX Runtime backend must not carry torch's ~300 MB in its peak RSS, exactly
as a deployed runtime does not.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.backends.base import Backend, check_network_inputs
from runtime.constants import PRECISIONS
from runtime.deblurrer import BUNDLED_MODEL_PATH

#: Where `svbr calibrate` is told to write the reduced-precision models (the defaults of --model-fp16/int8).
DEFAULT_MODEL_PATHS: dict[str, Path] = {
    "fp16": Path("models/svbrnet_fp16.onnx"),
    "int8": Path("models/svbrnet_int8.onnx"),
}

#: Name of the benchmarks' own PyTorch-eager runners (CPU is the baseline of every speed-up).
TORCH_EAGER_CPU = "torch"
TORCH_EAGER_CUDA = "torch-eager-cuda"

#: Packages whose versions every report records.
VERSIONED_PACKAGES: tuple[str, ...] = (
    "svbr-net",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnxruntime-gpu",
    "torch",
    "opencv-python-headless",
    "tensorrt",
    "matplotlib",
)


# --- sizes and small parsers ----------------------------------------------------------


def parse_resolution(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720): WIDTH x HEIGHT, the display convention (not training's HxW)."""
    try:
        width, height = (int(v) for v in text.lower().strip().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 1280x720 (W x H), got {text!r}") from None
    if width < 8 or height < 8:
        raise argparse.ArgumentTypeError(f"resolution must be at least 8x8, got {text!r}")
    return width, height


def parse_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_tile(text: str) -> int | None:
    """'512' -> 512; '0', 'full' or 'none' -> None (one full-frame pass)."""
    if text.lower() in ("0", "full", "none"):
        return None
    try:
        tile = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"tile must be a number of px or 0/full, got {text!r}") from None
    if tile < 0:
        raise argparse.ArgumentTypeError(f"tile must be >= 0 px, got {text!r}")
    return tile


def tile_label(tile: int | None) -> str:
    """How tables show a tile size: 'full' for a full-frame pass."""
    return "full" if tile is None else str(tile)


def megapixels(width: int, height: int) -> float:
    """Image area in MP (10^6 px)."""
    return width * height / 1e6


# --- model files per precision ------------------------------------------------------------


def display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter commands in notes)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def calibrate_hint(precision: str, path: Path) -> str:
    """The note shown when a precision's model file is missing."""
    return (
        f"{precision}: no model at {display_path(path)} (run `svbr calibrate --precision {precision} "
        f"--model {display_path(BUNDLED_MODEL_PATH)} -o {display_path(path)}`)"
    )


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model-fp32/--model-fp16/--model-int8 and --weights, shared by both scripts."""
    from runtime.arguments import add_alias

    group = parser.add_argument_group("models")
    group.add_argument(
        "--model-fp32",
        type=Path,
        metavar="ONNX",
        help="FP32 ONNX model (default: the bundled runtime/models/svbrnet.onnx, else exported now from --weights)",
    )
    for precision in ("fp16", "int8"):
        group.add_argument(
            f"--model-{precision}",
            type=Path,
            metavar="ONNX",
            default=DEFAULT_MODEL_PATHS[precision],
            help=f"{precision.upper()} ONNX model from `svbr calibrate --precision {precision}` "
            f"(default: {DEFAULT_MODEL_PATHS[precision]}; skipped with a note when missing)",
        )
    group.add_argument(
        "--weights",
        dest="checkpoint",
        type=Path,
        metavar="PT",
        help="PyTorch weights for PyTorch eager and for exporting a missing FP32 model "
        "(default: the bundled training/weights/svbrnet_cpu.pt)",
    )
    add_alias(group, "--checkpoint", "checkpoint", "--weights", type=Path)


def default_checkpoint() -> Path | None:
    """``training.model.PRETRAINED_PATH``; ``None`` where torch is not installed (e.g. a bare Jetson).

    Without torch the ONNX / TensorRT rows still run; only PyTorch eager and
    exporting a missing FP32 model need it.
    """
    try:
        from training.model import PRETRAINED_PATH
    except ImportError:
        return None
    return PRETRAINED_PATH


@dataclass
class ModelFiles:
    """The ONNX model of each precision, and why a precision has none."""

    paths: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_models(
    fp32: Path | None,
    fp16: Path | None,
    int8: Path | None,
    checkpoint: Path | None,
    export_dir: Path,
    wanted: tuple[str, ...] | list[str] = PRECISIONS,
) -> ModelFiles:
    """Find (or, for fp32, make) the ONNX model of every wanted precision.

    fp32: ``fp32`` if given, else the bundled model, else exported now from
    ``checkpoint`` into ``export_dir``. fp16/int8: the given file or the
    default path of ``DEFAULT_MODEL_PATHS``; missing ones are reported, not made
    (calibration takes minutes and is `svbr calibrate`'s job).
    """
    files = ModelFiles()
    given = {"fp32": fp32, "fp16": fp16, "int8": int8}
    for precision in wanted:
        path = given[precision]
        if precision == "fp32" and path is None:
            if BUNDLED_MODEL_PATH.is_file():
                path = BUNDLED_MODEL_PATH
            elif checkpoint is not None and checkpoint.is_file():
                path = export_fp32(checkpoint, export_dir / "svbrnet_fp32.onnx")
                files.notes.append(f"fp32: bundled model missing; exported {checkpoint} to {path}")
            else:
                files.missing[precision] = (
                    f"fp32: no model (bundled {BUNDLED_MODEL_PATH} and checkpoint {checkpoint} both missing; "
                    "pass --model-fp32 or run `svbr export --bundled`)"
                )
                continue
        if path is None:
            path = DEFAULT_MODEL_PATHS[precision]
        if not Path(path).is_file():
            files.missing[precision] = (
                f"fp32: no model at {display_path(path)}"
                if precision == "fp32"
                else calibrate_hint(precision, Path(path))
            )
            continue
        files.paths[precision] = Path(path)
    return files


def export_fp32(checkpoint: Path, out_path: Path) -> Path:
    """Export ``checkpoint`` to an FP32 ONNX model (BatchNorm folded), as `svbr export` does."""
    from export.onnx_export import export_onnx
    from training.model import load_model

    model, _ = load_model(checkpoint)
    return export_onnx(model, out_path)


# --- PyTorch eager: the baseline ---------------------------------------------------------


class TorchEagerBackend(Backend):
    """SVBR-Net in PyTorch eager mode behind the runtime's :class:`Backend` interface.

    The network is ``training.model.SVBRNet`` as trained (BatchNorm not folded,
    eval mode, ``torch.inference_mode``): what "run it in PyTorch" means before
    any deployment work. Behind the Backend interface it goes through the same
    ``Deblurrer`` (normalisation, tiling, uint8 conversion) as every other
    backend, so the comparison is the network's speed and nothing else.

    Args:
        checkpoint: weights (``svbr train`` checkpoint); ``None`` or a missing
            file = random weights, which time identically (no data-dependent paths).
        device: ``"cpu"`` or ``"cuda"`` / ``"cuda:N"``.
        precision: ``"fp32"``; ``"fp16"`` on CUDA only (weights and inputs cast to half).
        threads: ``torch.set_num_threads`` for the CPU; ``None`` = torch's default.
    """

    def __init__(
        self, checkpoint: Path | None, device: str = "cpu", precision: str = "fp32", threads: int | None = None
    ) -> None:
        import torch

        from training.model import SVBRNet, load_model

        if precision not in self.precisions(device):
            raise ValueError(f"PyTorch eager on {device} runs {self.precisions(device)}, not {precision}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("torch has no CUDA device")
        if threads is not None:
            torch.set_num_threads(threads)
        if checkpoint is not None and Path(checkpoint).is_file():
            model, self.metadata = load_model(checkpoint)
            self.metadata = {key: str(value) for key, value in self.metadata.items()}
            self.model_path = Path(checkpoint)
        else:
            torch.manual_seed(0)
            model, self.metadata = SVBRNet().eval(), {"weights": "random (timing only)"}
            self.model_path = Path("<random-init>")
        self._torch = torch
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._model = model.to(device=device, dtype=self._dtype).eval()
        self.name = TORCH_EAGER_CPU if device == "cpu" else TORCH_EAGER_CUDA
        self.device = device
        self.precision = precision
        self.preferred_batch_size = 1

    @staticmethod
    def precisions(device: str) -> tuple[str, ...]:
        """Precisions eager mode runs on ``device``: no FP16 on the CPU (not a deployment path), no INT8."""
        return ("fp32",) if device == "cpu" else ("fp32", "fp16")

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        check_network_inputs(image, blur_map)
        torch = self._torch
        with torch.inference_mode():
            tensors = [torch.from_numpy(a).to(self.device, self._dtype) for a in (image, blur_map)]
            return self._model(*tensors).float().cpu().numpy()

    def close(self) -> None:
        self._model = None  # type: ignore[assignment]


# --- machine facts -------------------------------------------------------------------------


def _proc_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (kB) in MB; ``None`` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process image so far, in MB.

    Linux: ``VmHWM``, which starts afresh at ``exec``. Not ``ru_maxrss``: it
    survives ``fork`` + ``exec``, so a benchmark worker would report its
    parent's peak whenever the parent was larger. Elsewhere ``ru_maxrss``.
    """
    high_water = _proc_status_mb("VmHWM")
    if high_water is not None:
        return high_water
    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux/BSD KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1e6


def current_rss_mb() -> float | None:
    """Resident set size now, in MB (``VmRSS``); ``None`` off Linux."""
    return _proc_status_mb("VmRSS")


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: ISA flags that decide whether FP16 / INT8 arithmetic has fast CPU kernels.
CPU_FLAGS_OF_INTEREST: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_int8",
    "fphp",
    "asimdhp",
    "asimddp",
    "i8mm",
    "bf16",  # ARM (Jetson): FP16 arithmetic, int8 dot products
)


def cpu_flags() -> list[str]:
    """The flags of ``CPU_FLAGS_OF_INTEREST`` this CPU has (``/proc/cpuinfo``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]
    except OSError:
        pass
    return []


def memory_gb() -> float | None:
    """Total RAM in GB (``/proc/meminfo``); ``None`` off Linux."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return None


def gpu_names() -> list[str]:
    """GPU names from ``nvidia-smi`` (empty without one); avoids importing torch or CUDA."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def jetson_model() -> str | None:
    """The Jetson board name (device tree), ``None`` elsewhere."""
    try:
        return Path("/proc/device-tree/model").read_text().strip("\x00\n ") or None
    except OSError:
        return None


def machine_info() -> dict[str, object]:
    """Where the numbers were measured: CPU, cores, RAM, GPUs, OS, Python, load."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "os_cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gb": memory_gb(),
        "gpus": gpu_names(),
        "board": jetson_model(),
        "python": sys.version.split()[0],
        # Another job on the machine slows every row alike but is worth knowing.
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that decide the numbers (``None`` = not installed)."""
    versions: dict[str, str | None] = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def default_threads() -> int:
    """All cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
