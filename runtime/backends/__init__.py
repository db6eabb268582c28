"""Backend registry: pick an inference backend by name, or the fastest available with ``"auto"``.

Each backend lives in its own module, imported only when chosen, so a
missing optional library (tensorrt, a CUDA build of onnxruntime) never breaks
the others. A later backend registers itself with one :func:`register_backend`
line here.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from runtime.backends.base import Backend
from runtime.backends.options import BackendOptions

logger = logging.getLogger(__name__)


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


def create_backend(
    name: str, model_path: str | os.PathLike[str], options: BackendOptions | None = None, **kwargs: Any
) -> Backend:
    """Load ``model_path`` on the backend called ``name``.

    Args:
        name: a registry name (see :func:`backend_names`) or ``"auto"``: the
            first of ``AUTO_ORDER`` that is available and loads the model. A
            fallback is logged once at DEBUG level (logger ``runtime.backends``);
            the chosen backend's ``name`` says which one runs.
        model_path: the model file (ONNX for the ONNX Runtime backends).
        options: a :class:`BackendOptions`; keyword arguments (``threads=2``,
            ``device_id=1``, ``device="cuda:1"``, ...) update it. Each backend gets
            the options it uses (``Backend.option_names``) and ignores the others.

    Raises:
        TypeError: an option that is not a :class:`BackendOptions` field.
        ValueError: unknown name, or an option out of range.
        RuntimeError: the backend (or, for "auto", every backend) cannot run here.
        FileNotFoundError: the model file does not exist.
    """
    options = BackendOptions.from_kwargs(options, **kwargs)
    if name == "auto":
        failures = []
        for candidate in AUTO_ORDER:
            spec = BACKENDS.get(candidate)
            if spec is None:
                continue
            try:
                cls = spec.load_class()
                if not cls.is_available(**spec.options):
                    failures.append(f"{candidate}: {cls.unavailable_reason(**spec.options)}")
                    continue
                backend = _construct(cls, spec, model_path, options)
            except (ImportError, RuntimeError) as error:
                # Listed as available but failed to load (e.g. CUDA libraries missing, or no
                # engine built for this model): fall through to the next fastest, quietly.
                failures.append(f"{candidate}: {error}")
                continue
            if failures:
                logger.debug("backend auto chose %s after: %s", backend.name, "; ".join(failures))
            return backend
        raise RuntimeError("no inference backend could load the model: " + "; ".join(failures))
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose from {backend_names()}")
    spec = BACKENDS[name]
    try:
        cls = spec.load_class()
    except ImportError as error:
        raise RuntimeError(f"backend {name} needs a library that is not installed: {error}") from error
    if not cls.is_available(**spec.options):
        raise RuntimeError(
            f"backend {name} cannot run here: {cls.unavailable_reason(**spec.options)} "
            f"(available: {', '.join(available_backends())})"
        )
    return _construct(cls, spec, model_path, options)


def _construct(
    cls: type[Backend], spec: BackendSpec, model_path: str | os.PathLike[str], options: BackendOptions
) -> Backend:
    """``cls`` built with its registry options and the :class:`BackendOptions` it reads."""
    names = cls.option_names or tuple(
        name for name in BackendOptions.names() if name in inspect.signature(cls.__init__).parameters
    )
    return cls(model_path, **{**spec.options, **options.for_backend(names)})


__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "Backend",
    "BackendOptions",
    "available_backends",
    "backend_names",
    "create_backend",
    "register_backend",
]
