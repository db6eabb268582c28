"""Typed backend options: every backend built through ``"auto"`` with every documented option.

``BackendOptions`` (runtime/backends/options.py) is what ``create_backend`` and ``Deblurrer``
take; each backend reads the fields it uses (``Backend.option_names``) and ignores the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest

from runtime import backends
from runtime.backends import BACKENDS, BackendOptions, create_backend, register_backend
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from runtime.deblurrer import Deblurrer

#: every documented option, set (values every backend accepts)
ALL_OPTIONS = dict(threads=1, device_id=0, workspace_mib=256, half=None, channels_last=True)


class OnlyDeviceBackend(OnnxRuntimeBackend):
    """Stands in for TensorRT on a CPU machine: a backend whose constructor takes no ``threads``."""

    option_names = ("device_id",)

    def __init__(self, model_path, device_id: int = 0) -> None:  # no threads, like TensorRTBackend
        super().__init__(model_path, "cpu", device_id)
        self.name = "only-device"


class BrokenBackend(OnnxRuntimeBackend):
    """Listed as available, fails to load (as onnxruntime-cuda does with missing CUDA libraries)."""

    def __init__(self, model_path, **_: object) -> None:
        raise RuntimeError("CUDA libraries missing")


@pytest.fixture
def registry(monkeypatch):
    """A scratch registry and AUTO_ORDER, restored after the test."""
    monkeypatch.setattr(backends, "BACKENDS", dict(BACKENDS))
    monkeypatch.setattr(backends, "AUTO_ORDER", backends.AUTO_ORDER)
    return backends


def model_for(name: str, tiny_onnx_model: Path, tmp_path: Path) -> Path:
    """A model file the backend ``name`` loads (skips, with the reason, where it cannot run here)."""
    spec = BACKENDS[name]
    try:
        cls = spec.load_class()
    except ImportError as error:
        pytest.skip(f"{name}: {error}")
    if not cls.is_available(**spec.options):
        pytest.skip(f"{name}: {cls.unavailable_reason(**spec.options)}")
    if name == "tensorrt":
        from runtime.tensorrt_build import build_engine, optimisation_profile

        return build_engine(
            tiny_onnx_model,
            tmp_path / "m.engine",
            profile=optimisation_profile(32, 16, max_batch=2),
            cache_dir=tmp_path / "cache",
        ).engine_path
    if name == "torch-cuda":
        torch = pytest.importorskip("torch")
        if not torch.cuda.is_available():
            pytest.skip("torch-cuda: torch sees no CUDA device")
        from conftest import make_random_svbrnet

        from training.model import save_checkpoint

        save_checkpoint(tmp_path / "m.pt", make_random_svbrnet(), {"step": 0})
        return tmp_path / "m.pt"
    return tiny_onnx_model


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_through_auto_with_every_option(name, registry, tiny_onnx_model, tmp_path):
    model = model_for(name, tiny_onnx_model, tmp_path)
    registry.AUTO_ORDER = (name,)
    options = {**ALL_OPTIONS, "engine_cache": tmp_path / "cache"}
    assert set(options) == set(BackendOptions.names()), "test every documented option"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            backend = create_backend("auto", model, **options)
        except RuntimeError as error:
            pytest.skip(f"{name} cannot load here: {error}")
        with backend:
            assert backend.name == name
            assert set(backend.option_names) <= set(BackendOptions.names())
            sharp = (
                backend.run(np.zeros((1, 3, 32, 32), np.float32), np.zeros((1, 1, 32, 32), np.float32))
                if backend.io == "float32"
                else None
            )
            assert sharp is None or sharp.shape == (1, 3, 32, 32)


def test_threads_work_whatever_auto_picks(registry, tiny_onnx_model):
    # Before: Deblurrer(threads=2) raised TypeError where "auto" chose TensorRT.
    register_backend("only-device", __name__, "OnlyDeviceBackend")
    registry.AUTO_ORDER = ("only-device", "onnxruntime-cpu")
    deblurrer = Deblurrer(tiny_onnx_model, threads=2, tile=None)
    with deblurrer:
        assert deblurrer.backend_name == "only-device"
        image = np.zeros((16, 16, 3), np.uint8)
        assert deblurrer.deblur(image, np.ones((16, 16), np.float32)).shape == image.shape


def test_auto_falls_back_quietly_and_says_what_it_chose(registry, tiny_onnx_model, caplog):
    register_backend("broken", __name__, "BrokenBackend")
    registry.AUTO_ORDER = ("broken", "onnxruntime-cpu")
    caplog.set_level(logging.DEBUG, logger="runtime.backends")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning any more
        deblurrer = Deblurrer(tiny_onnx_model, threads=1)
    with deblurrer:
        assert deblurrer.backend_name == "onnxruntime-cpu"
    records = [r for r in caplog.records if r.name == "runtime.backends"]
    assert len(records) == 1 and records[0].levelno == logging.DEBUG
    assert "chose onnxruntime-cpu" in records[0].getMessage() and "CUDA libraries missing" in records[0].getMessage()


def test_options_typed_and_checked(tiny_onnx_model):
    with pytest.raises(TypeError, match="unknown backend option.*thread.*threads"):
        Deblurrer(tiny_onnx_model, thread=2)
    with pytest.raises(ValueError, match="threads"):
        BackendOptions(threads=0)
    assert BackendOptions.from_kwargs(device="cuda:1").device_id == 1
    assert BackendOptions.from_kwargs(device="2").device_id == 2
    base = BackendOptions(threads=2)
    assert BackendOptions.from_kwargs(base, device_id=1) == BackendOptions(threads=2, device_id=1)
    assert base.for_backend(("device_id",)) == {} and base.for_backend(("threads",)) == {"threads": 2}
    assert dataclasses.is_dataclass(BackendOptions) and BackendOptions.__dataclass_params__.frozen
    with Deblurrer(tiny_onnx_model, backend="onnxruntime-cpu", options=BackendOptions(threads=1)) as deblurrer:
        assert deblurrer.backend_name == "onnxruntime-cpu"


def test_deblur_return_type_is_precise():
    from runtime.deblurrer import Deblurrer as D

    overloads = typing.get_overloads(D.deblur)
    assert len(overloads) == 3
    returns = [
        typing.get_type_hints(o, globalns=vars(__import__("runtime.deblurrer").deblurrer))["return"] for o in overloads
    ]
    assert returns[0] is np.ndarray and typing.get_origin(returns[1]) is tuple
