"""Backend registry: pick an inference backend by name, or the fastest available with ``"auto"``.

Each backend lives in its own module, imported only when chosen, so a
missing optional library (tensorrt, a CUDA build of onnxruntime) never breaks
the others. A later backend registers itself with one :func:`register_backend`
line here.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

from runtime.backends.base import Backend


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend's class lives and the options its registry name implies."""

    module: str
    class_name: str
    options: dict[str, Any] = field(default_factory=dict)

    def load_class(self) -> type[Backend]:
        return getattr(importlib.import_module(self.module), self.class_name)


#: Registry name -> backend. Later issues add "tensorrt" and "torch-cuda".
BACKENDS: dict[str, BackendSpec] = {}

#: ``"auto"`` tries these in order (fastest first) and takes the first that loads.
#: onnxruntime-tensorrt is left out: ORT builds a TensorRT engine per new input
#: shape at run time (minutes), so it is opt-in; the native "tensorrt" backend
#: loads a prebuilt engine instead.
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "torch-cuda", "onnxruntime-cuda", "onnxruntime-cpu")


def register_backend(name: str, module: str, class_name: str, **options: Any) -> None:
    """Make a backend class selectable by ``name`` (``options`` are passed to its constructor)."""
    BACKENDS[name] = BackendSpec(module, class_name, options)


_ORT = "runtime.backends.onnxruntime_backend"
register_backend("onnxruntime-cpu", _ORT, "OnnxRuntimeBackend", provider="cpu")
register_backend("onnxruntime-cuda", _ORT, "OnnxRuntimeBackend", provider="cuda")
register_backend("onnxruntime-tensorrt", _ORT, "OnnxRuntimeBackend", provider="tensorrt")
register_backend("tensorrt", "runtime.backends.tensorrt_backend", "TensorRTBackend")
register_backend("torch-cuda", "runtime.backends.torch_backend", "TorchCudaBackend", device="cuda")


def backend_names() -> list[str]:
    """Every registered name plus ``"auto"``."""
    return ["auto", *BACKENDS]


def available_backends() -> list[str]:
    """Registered backends whose libraries and devices this machine has."""
    available = []
    for name, spec in BACKENDS.items():
        try:
            if spec.load_class().is_available(**spec.options):
                available.append(name)
        except ImportError:
            pass
    return available


def create_backend(name: str, model_path: str | os.PathLike[str], **options: Any) -> Backend:
    """Load ``model_path`` on the backend called ``name``.

    Args:
        name: a registry name (see :func:`backend_names`) or ``"auto"``: the
            first of ``AUTO_ORDER`` that is available and loads the model.
        model_path: the model file (ONNX for the ONNX Runtime backends).
        options: extra constructor options (e.g. ``threads=2``, ``device_id=1``).

    Raises:
        ValueError: unknown name.
        RuntimeError: the backend (or, for "auto", every backend) cannot run here.
        FileNotFoundError: the model file does not exist.
    """
    if name == "auto":
        failures = []
        for candidate in AUTO_ORDER:
            spec = BACKENDS.get(candidate)
            if spec is None:
                continue
            try:
                cls = spec.load_class()
                if not cls.is_available(**spec.options):
                    continue
                return cls(model_path, **{**spec.options, **options})
            except (ImportError, RuntimeError) as error:
                # Listed as available but failed to load (e.g. CUDA libraries
                # missing): say so, then fall through to the next fastest.
                warnings.warn(f"backend {candidate} unavailable: {error}", RuntimeWarning, stacklevel=2)
                failures.append(f"{candidate}: {error}")
        raise RuntimeError("no inference backend could load the model: " + "; ".join(failures))
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {backend_names()}")
    spec = BACKENDS[name]
    try:
        cls = spec.load_class()
    except ImportError as error:
        raise RuntimeError(f"backend {name} needs a library that is not installed: {error}") from error
    if not cls.is_available(**spec.options):
        raise RuntimeError(f"backend {name} cannot run here: {cls.unavailable_reason(**spec.options)} "
                           f"(available: {', '.join(available_backends())})")
    return cls(model_path, **{**spec.options, **options})


__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "available_backends",
    "backend_names",
    "create_backend",
    "register_backend",
]
