"""TensorRT: profile and engine-cache keys (always), the clear error without TensorRT, and, where
``tensorrt`` imports, engine builds and the TensorRT backend."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from runtime.constants import HALO_PX, INPUT_IMAGE_NAME, INPUT_MAP_NAME
from runtime.tensorrt_build import (
    INSTALL_HINT,
    TensorRTUnavailable,
    engine_cache_key,
    exact_profile,
    main,
    optimisation_profile,
    profile_limits,
    require_tensorrt,
    timing_cache_path,
)
from runtime.tiling import plan_tiles

REPO = Path(__file__).resolve().parents[1]


def _tensorrt_importable() -> bool:
    try:
        require_tensorrt()
        return True
    except TensorRTUnavailable:
        return False


TENSORRT = _tensorrt_importable()
needs_tensorrt = pytest.mark.skipif(not TENSORRT, reason="tensorrt (with pycuda and a GPU) is not importable here")
without_tensorrt = pytest.mark.skipif(
    TENSORRT, reason="TensorRT is installed: the missing-TensorRT path cannot be seen"
)


# --- optimisation profile ----------------------------------------------------------------------


def test_default_profile_covers_the_deblurrer_windows():
    profile = optimisation_profile(512, HALO_PX, max_batch=4)
    assert profile[INPUT_IMAGE_NAME] == ((1, 3, 172, 172), (4, 3, 680, 680), (4, 3, 680, 680))
    assert profile[INPUT_MAP_NAME] == ((1, 1, 172, 172), (4, 1, 680, 680), (4, 1, 680, 680))
    assert set(profile) == {INPUT_IMAGE_NAME, INPUT_MAP_NAME}


def test_profile_rounds_like_the_tiler():
    # tile 510 and halo 83 are rounded up to 512 and 84 by plan_tiles, so the windows are 680 px.
    assert optimisation_profile(510, 83)[INPUT_IMAGE_NAME][2] == (1, 3, 680, 680)
    assert optimisation_profile(64, 0, max_batch=2, opt_batch=1)[INPUT_IMAGE_NAME] == (
        (1, 3, 4, 4),
        (1, 3, 64, 64),
        (2, 3, 64, 64),
    )


@pytest.mark.parametrize("tile,halo", [(512, HALO_PX), (256, 84), (100, 10)])
def test_every_window_of_every_photo_fits_the_profile(tile, halo):
    batch, (min_h, min_w), (max_h, max_w) = profile_limits(optimisation_profile(tile, halo, max_batch=3))
    assert batch == 3
    rng = np.random.default_rng(0)
    sizes = [(1, 1), (5, 7), (tile, tile), (tile + 1, 3), (2000, 3000)] + [
        tuple(rng.integers(1, 1500, 2)) for _ in range(40)
    ]
    for height, width in sizes:
        plan = plan_tiles(int(height), int(width), tile, halo)
        assert min_h <= plan.window_height <= max_h and min_w <= plan.window_width <= max_w, (height, width)
        assert plan.window_height % 4 == 0 and plan.window_width % 4 == 0


def test_profile_rejects_bad_arguments():
    for kwargs in ({"tile": 0}, {"max_batch": 0}, {"max_batch": 2, "opt_batch": 3}):
        with pytest.raises(ValueError):
            optimisation_profile(**kwargs)
    assert exact_profile(256, 128)[INPUT_MAP_NAME] == ((1, 1, 256, 128),) * 3
    with pytest.raises(ValueError):
        exact_profile(250, 128)


def test_show_profile_needs_no_tensorrt(capsys):
    assert main(["--onnx", "unused.onnx", "--show-profile", "--tile", "256", "--max-batch", "2"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile[INPUT_IMAGE_NAME] == [[1, 3, 172, 172], [2, 3, 424, 424], [2, 3, 424, 424]]


# --- engine cache key --------------------------------------------------------------------------


def test_engine_cache_key_covers_every_ingredient():
    profile = optimisation_profile(512, HALO_PX, 4)
    base = ("ab" * 32, "10.3.0", "Orin", "8.7", profile)
    key = engine_cache_key(*base)
    assert len(key) == 32 and int(key, 16) >= 0
    assert engine_cache_key(*base) == key  # deterministic
    reordered = dict(reversed(list(profile.items())))
    assert engine_cache_key(*base[:4], reordered) == key  # the dict order does not matter
    variants = [
        ("cd" * 32, *base[1:]),
        (base[0], "11.0.0", *base[2:]),
        (*base[:2], "NVIDIA H100 80GB HBM3", *base[3:]),
        (*base[:3], "9.0", base[4]),
        (*base[:4], optimisation_profile(512, HALO_PX, 8)),
        (*base[:4], optimisation_profile(256, HALO_PX, 4)),
    ]
    keys = {engine_cache_key(*variant) for variant in variants}
    assert key not in keys and len(keys) == len(variants)
    assert engine_cache_key(*base, builder_options={"workspace_mib": 1024}) != key


def test_timing_cache_is_per_version_and_gpu(tmp_path):
    a = timing_cache_path(tmp_path, "10.3.0", "Orin", "8.7")
    assert a.parent == tmp_path and a.suffix == ".cache"
    assert (
        len(
            {
                a,
                timing_cache_path(tmp_path, "10.4.0", "Orin", "8.7"),
                timing_cache_path(tmp_path, "10.3.0", "NVIDIA RTX 4090", "8.9"),
            }
        )
        == 3
    )


# --- without TensorRT: one clear sentence, exit 2, no traceback -------------------------------------


def _svbr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "svbr_cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@without_tensorrt
def test_build_engine_without_tensorrt_says_how_to_install(random_onnx_model, tmp_path):
    result = _svbr("build-engine", "--model", str(random_onnx_model), "-o", str(tmp_path / "m.engine"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TensorRT is required" in lines[0]
    assert "Jetson" in lines[0] and "pip install tensorrt" in lines[0]
    assert not (tmp_path / "m.engine").exists()


@without_tensorrt
def test_validate_with_tensorrt_backend_without_tensorrt(random_onnx_model, tmp_path):
    from training.model import SVBRNet, save_checkpoint

    checkpoint = tmp_path / "m.pt"
    save_checkpoint(checkpoint, SVBRNet(), {})
    images = tmp_path / "images"
    sys.path.insert(0, str(REPO / "tests"))
    from test_calibration import make_images

    make_images(images)
    result = _svbr(
        "validate",
        "--models",
        str(random_onnx_model),
        "--backend",
        "tensorrt",
        "--checkpoint",
        str(checkpoint),
        "--images",
        str(images),
        "--samples",
        "1",
        "--size",
        "32",
        "--cache",
        str(tmp_path / "cache"),
        "-q",
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(INSTALL_HINT)


@without_tensorrt
def test_tensorrt_backend_without_tensorrt(random_onnx_model):
    from runtime.backends.tensorrt_backend import TensorRTBackend

    assert TensorRTBackend.is_available() is False
    with pytest.raises(TensorRTUnavailable, match="TensorRT is required"):
        TensorRTBackend(random_onnx_model)
    assert str(TensorRTUnavailable(INSTALL_HINT)).count(". ") == 0  # one sentence


def test_tensorrt_backend_module_imports_without_tensorrt():
    module = importlib.import_module("runtime.backends.tensorrt_backend")
    assert isinstance(module.TensorRTBackend.is_available(), bool)
    assert "tensorrt" not in sys.modules or TENSORRT


# --- with TensorRT (skipped here: no machine in this project can import it) -----------------------------


@pytest.fixture(scope="module")
def engine(random_onnx_model, tmp_path_factory):
    from runtime.tensorrt_build import build_engine

    folder = tmp_path_factory.mktemp("engines")
    return build_engine(
        random_onnx_model,
        folder / "m.engine",
        profile=optimisation_profile(32, 16, max_batch=2),
        cache_dir=folder / "cache",
    )


@needs_tensorrt
def test_engine_build_is_cached(engine, random_onnx_model, tmp_path):
    from runtime.tensorrt_build import build_engine, read_engine_metadata

    assert engine.engine_path.is_file() and not engine.cache_hit
    again = build_engine(
        random_onnx_model,
        tmp_path / "again.engine",
        profile=optimisation_profile(32, 16, max_batch=2),
        cache_dir=engine.engine_path.parent / "cache",
    )
    assert again.cache_hit and again.key == engine.key
    assert again.engine_path.read_bytes() == engine.engine_path.read_bytes()
    metadata = read_engine_metadata(again.engine_path)
    assert metadata["svbr"]["svbr.precision"] == "fp32" and metadata["key"] == engine.key
    assert list((engine.engine_path.parent / "cache").glob("timing-*.cache"))


@needs_tensorrt
def test_tensorrt_backend_matches_onnxruntime(engine, random_onnx_model):
    from runtime.backends import create_backend
    from runtime.backends.compare import compare_runners

    with (
        create_backend("tensorrt", engine.engine_path) as trt_backend,
        create_backend("onnxruntime-cpu", random_onnx_model) as ort_backend,
    ):
        assert trt_backend.preferred_batch_size == 2 and trt_backend.precision == "fp32"
        for _, comparison in compare_runners(ort_backend, trt_backend, [(1, 64, 64), (2, 48, 60), (1, 40, 64)]):
            assert comparison.max_abs < 2e-3, comparison
        with pytest.raises(ValueError, match="outside the engine's profile"):
            trt_backend.run(np.zeros((3, 3, 64, 64), np.float32), np.zeros((3, 1, 64, 64), np.float32))


@needs_tensorrt
def test_deblurrer_on_a_tensorrt_engine(engine):
    from runtime import Deblurrer

    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    with Deblurrer(model=engine.engine_path, backend="tensorrt", tile=32, halo=16) as deblurrer:
        sharp = deblurrer.deblur(image, np.full((70, 90), 2.0, np.float32))
    assert sharp.shape == image.shape and sharp.dtype == np.uint8


# --- the glue against a stand-in: every TensorRT/pycuda call above, on ONNX Runtime --------------------
#
# No machine here can import TensorRT, so the build and backend code would otherwise never run before
# it meets a GPU. These fakes implement exactly the documented calls this package makes (named-tensor
# API, optimisation profile, timing cache, pycuda buffers and stream), executing the ONNX model with
# ONNX Runtime; they check the call sequence and the buffer handling, not TensorRT's numerics.


class _FakeTrt:
    """A module-like stand-in for ``tensorrt`` (10.x Python API)."""

    __version__ = "10.99.0-fake"

    class Logger:
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class NetworkDefinitionCreationFlag:
        STRONGLY_TYPED = 5

    class MemoryPoolType:
        WORKSPACE = 0

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    @staticmethod
    def nptype(dtype):
        return dtype

    class _Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, minimum, optimum, maximum):
            self.shapes[name] = (tuple(minimum), tuple(optimum), tuple(maximum))

    class _TimingCache:
        def __init__(self, data):
            self.data = bytes(data) or b"fake-timings"

        def serialize(self):
            return self.data + b"+"

    class _Config:
        def __init__(self):
            self.profiles, self.pool, self.cache = [], {}, None

        def set_memory_pool_limit(self, pool, size):
            self.pool[pool] = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)

        def create_timing_cache(self, data):
            return _FakeTrt._TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            assert ignore_mismatch is False
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class _Input:
        def __init__(self, name):
            self.name = name

    class _Network:
        def __init__(self, flags):
            self.flags, self.onnx, self.inputs = flags, None, []

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, index):
            return self.inputs[index]

    class Builder:
        builds = 0

        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            assert flags == 1 << 5, "strongly typed"
            return _FakeTrt._Network(flags)

        def create_builder_config(self):
            return _FakeTrt._Config()

        def create_optimization_profile(self):
            return _FakeTrt._Profile()

        def build_serialized_network(self, network, config):
            import pickle

            _FakeTrt.Builder.builds += 1
            (profile,) = config.profiles
            assert config.pool[_FakeTrt.MemoryPoolType.WORKSPACE] > 0 and config.cache is not None
            return memoryview(pickle.dumps({"onnx": network.onnx, "profile": profile.shapes}))

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.num_errors = network, 0

        def parse(self, data):
            import onnx

            self.network.onnx = bytes(data)
            self.network.inputs = [_FakeTrt._Input(v.name) for v in onnx.load_from_string(data).graph.input]
            return True

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            import pickle

            return _FakeEngine(pickle.loads(data))


class _FakeEngine:
    def __init__(self, payload):
        import onnxruntime as ort

        self.session = ort.InferenceSession(payload["onnx"], providers=["CPUExecutionProvider"])
        self.profile = payload["profile"]
        self.names = [i.name for i in self.session.get_inputs()] + [o.name for o in self.session.get_outputs()]

    @property
    def num_io_tensors(self):
        return len(self.names)

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return _FakeTrt.TensorIOMode.INPUT if name in self.profile else _FakeTrt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        (kind,) = [v.type for v in (*self.session.get_inputs(), *self.session.get_outputs()) if v.name == name]
        return {"tensor(float)": np.dtype(np.float32), "tensor(uint8)": np.dtype(np.uint8)}[kind]

    def get_tensor_profile_shape(self, name, index):
        assert index == 0
        return self.profile[name]

    def create_execution_context(self):
        return _FakeContext(self)


class _FakeContext:
    def __init__(self, engine):
        self.engine, self.addresses, self.shapes, self.calls = engine, {}, {}, []

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        self.calls.append(("set_tensor_address", name))

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return self.shapes[name]

    def execute_async_v3(self, stream_handle):
        assert stream_handle == _FakeCuda.Stream.HANDLE
        feeds = {
            name: _FakeCuda.memory[self.addresses[name]]
            .view(self.engine.get_tensor_dtype(name))[: int(np.prod(shape))]
            .reshape(shape)
            for name, shape in self.shapes.items()
            if name != "sharp"
        }
        (sharp,) = self.engine.session.run(["sharp"], feeds)
        self.shapes["sharp"] = sharp.shape
        _FakeCuda.memory[self.addresses["sharp"]][: sharp.nbytes] = np.ascontiguousarray(sharp).view(np.uint8).ravel()
        self.calls.append(("execute_async_v3",))
        return True


class _FakeCuda:
    """A module-like stand-in for ``pycuda.driver``: device memory is numpy bytes, addressed by int."""

    memory: dict[int, np.ndarray] = {}
    allocations = 0

    @staticmethod
    def init():
        pass

    class Context:
        stack: list = []

        @staticmethod
        def pop():
            _FakeCuda.Context.stack.pop()

    class _Primary:
        def push(self):
            _FakeCuda.Context.stack.append(self)

        def detach(self):
            pass

    class Device:
        @staticmethod
        def count():
            return 1

        def __init__(self, index):
            self.index = index

        def name(self):
            return "Fake GPU"

        def compute_capability(self):
            return (8, 7)

        def retain_primary_context(self):
            return _FakeCuda._Primary()

    class Stream:
        HANDLE = 1234

        @property
        def handle(self):
            return self.HANDLE

        def synchronize(self):
            pass

    class _Allocation:
        def __init__(self, nbytes):
            self.address = 4096 * (len(_FakeCuda.memory) + 1)
            _FakeCuda.memory[self.address] = np.zeros(nbytes, np.uint8)

        def __int__(self):
            return self.address

        def free(self):
            del _FakeCuda.memory[self.address]

    @staticmethod
    def mem_alloc(nbytes):
        _FakeCuda.allocations += 1
        return _FakeCuda._Allocation(nbytes)

    @staticmethod
    def pagelocked_empty(count, dtype):
        _FakeCuda.allocations += 1
        return np.empty(count, dtype)

    @staticmethod
    def memcpy_htod_async(device, host, stream):
        assert host.flags.c_contiguous
        _FakeCuda.memory[int(device)][: host.nbytes] = host.view(np.uint8).ravel()

    @staticmethod
    def memcpy_dtoh_async(host, device, stream):
        host.view(np.uint8).ravel()[...] = _FakeCuda.memory[int(device)][: host.nbytes]


@pytest.fixture
def fake_tensorrt(monkeypatch):
    import types

    pycuda = types.ModuleType("pycuda")
    pycuda.driver = _FakeCuda
    monkeypatch.setitem(sys.modules, "tensorrt", _FakeTrt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", _FakeCuda)
    _FakeTrt.Builder.builds = 0
    yield
    assert not _FakeCuda.Context.stack, "every context push is popped"


@pytest.mark.skipif(TENSORRT, reason="TensorRT is installed: the real tests above cover this")
def test_build_and_run_glue_on_a_stand_in(fake_tensorrt, random_onnx_model, tmp_path):
    from runtime.backends.compare import compare_runners
    from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from runtime.backends.tensorrt_backend import TensorRTBackend
    from runtime.tensorrt_build import build_engine, find_cached_engine, read_engine_metadata

    profile = optimisation_profile(32, 16, max_batch=2)
    built = build_engine(random_onnx_model, tmp_path / "m.engine", profile=profile, cache_dir=tmp_path / "cache")
    assert not built.cache_hit and _FakeTrt.Builder.builds == 1
    metadata = read_engine_metadata(built.engine_path)
    assert metadata["gpu"] == "Fake GPU" and metadata["compute_capability"] == "8.7"
    assert metadata["svbr"]["svbr.precision"] == "fp32" and metadata["key"] == built.key
    assert list((tmp_path / "cache").glob("timing-trt10-99-0-fake-fake-gpu-sm8-7.cache"))
    again = build_engine(random_onnx_model, tmp_path / "again.engine", profile=profile, cache_dir=tmp_path / "cache")
    assert again.cache_hit and _FakeTrt.Builder.builds == 1 and again.key == built.key
    assert (
        build_engine(
            random_onnx_model,
            tmp_path / "b.engine",
            profile=optimisation_profile(32, 16, 1),
            cache_dir=tmp_path / "cache",
        ).key
        != built.key
    )
    assert find_cached_engine(random_onnx_model, tmp_path / "cache") is not None

    backend = TensorRTBackend(built.engine_path)
    assert (backend.name, backend.device, backend.precision, backend.preferred_batch_size) == (
        "tensorrt",
        "cuda:0",
        "fp32",
        2,
    )
    allocations = _FakeCuda.allocations
    with OnnxRuntimeBackend(random_onnx_model) as reference:
        for _, comparison in compare_runners(reference, backend, [(1, 64, 64), (2, 48, 60), (1, 40, 64)]):
            assert comparison.max_abs < 1e-5, comparison
    assert _FakeCuda.allocations == allocations, "no per-call buffer allocation"
    with pytest.raises(ValueError, match="outside the engine's profile"):
        backend.run(np.zeros((3, 3, 64, 64), np.float32), np.zeros((3, 1, 64, 64), np.float32))
    with pytest.raises(ValueError, match="outside the engine's profile"):
        backend.run(np.zeros((1, 3, 68, 64), np.float32), np.zeros((1, 1, 68, 64), np.float32))
    backend.close()

    # The ONNX model itself resolves to the cached engine once built.
    with TensorRTBackend(random_onnx_model, engine_cache=tmp_path / "cache") as by_onnx:
        assert by_onnx.model_path.suffix == ".engine"
    with pytest.raises(RuntimeError, match="svbr build-engine"):
        TensorRTBackend(random_onnx_model, engine_cache=tmp_path / "empty")


@pytest.mark.skipif(TENSORRT, reason="TensorRT is installed: the real tests above cover this")
def test_deblurrer_glue_on_a_stand_in(fake_tensorrt, random_onnx_model, tmp_path):
    from runtime import Deblurrer
    from runtime.backends.tensorrt_backend import TensorRTBackend
    from runtime.tensorrt_build import build_engine

    built = build_engine(
        random_onnx_model,
        tmp_path / "m.engine",
        profile=optimisation_profile(32, 16, max_batch=2),
        cache_dir=tmp_path / "cache",
    )
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    blur_map = np.full((70, 90), 2.0, np.float32)
    with Deblurrer(model=random_onnx_model, backend="onnxruntime-cpu", tile=32, halo=16) as reference:
        expected = reference.deblur(image, blur_map)
    with Deblurrer(backend=TensorRTBackend(built.engine_path), tile=32, halo=16) as deblurrer:
        assert deblurrer.batch_size == 2
        sharp = deblurrer.deblur(image, blur_map)
    assert np.abs(sharp.astype(int) - expected).max() <= 1


@pytest.mark.skipif(TENSORRT, reason="TensorRT is installed: the real tests above cover this")
def test_uint8_io_engine_on_a_stand_in(fake_tensorrt, random_onnx_model, tmp_path):
    """An engine of a uint8-I/O model: profile in N×H×W×3 / N×H×W, uint8 buffers, Deblurrer feeds uint8 windows."""
    import onnx

    from export.io_wrap import wrap_uint8_io
    from runtime import Deblurrer
    from runtime.backends.tensorrt_backend import TensorRTBackend
    from runtime.tensorrt_build import build_engine

    uint8_model = tmp_path / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model))), str(uint8_model))
    profile = optimisation_profile(32, 16, max_batch=2, io="uint8")
    assert profile["image"][2] == (2, 64, 64, 3) and profile["blur_map"][2] == (2, 64, 64)
    built = build_engine(uint8_model, tmp_path / "u8.engine", profile=profile, cache_dir=tmp_path / "cache")
    backend = TensorRTBackend(built.engine_path)
    assert backend.io == "uint8" and backend.preferred_batch_size == 2
    with pytest.raises(ValueError, match="uint8"):
        backend.run(np.zeros((1, 3, 64, 64), np.float32), np.zeros((1, 1, 64, 64), np.float32))
    with pytest.raises(ValueError, match="outside the engine's profile"):
        backend.run(np.zeros((1, 68, 64, 3), np.uint8), np.zeros((1, 68, 64), np.float32))
    image = np.random.default_rng(0).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    blur_map = np.full((70, 90), 2.0, np.float32)
    with Deblurrer(model=uint8_model, backend="onnxruntime-cpu", tile=32, halo=16) as reference:
        expected = reference.deblur(image, blur_map)
    with Deblurrer(backend=backend, tile=32, halo=16) as deblurrer:
        sharp = deblurrer.deblur(image, blur_map)
    assert sharp.dtype == np.uint8 and np.array_equal(sharp, expected)


def test_build_engine_profile_follows_the_model_io(random_onnx_model, tmp_path, capsys):
    import onnx

    from export.io_wrap import wrap_uint8_io

    uint8_model = tmp_path / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(random_onnx_model))), str(uint8_model))
    from runtime.tensorrt_build import main

    assert main(["--onnx", str(uint8_model), "--show-profile", "--tile", "32", "--halo", "16"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["image"][2][1:] == [64, 64, 3] and len(shown["blur_map"][2]) == 3


def test_tensorrt_backend_by_name_says_how_to_install_it(tmp_path):
    from runtime.backends import create_backend
    from runtime.tensorrt_build import tensorrt_installed

    if tensorrt_installed():
        pytest.skip("tensorrt is installed here: the missing-library message cannot be shown")
    with pytest.raises(RuntimeError, match="TensorRT is required"):
        create_backend("tensorrt", tmp_path / "m.engine")
