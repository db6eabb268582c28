"""PyTorch-CUDA backend: no torch at import, a clean refusal without CUDA, and its CPU-checkable path."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.backends.base import Backend
from runtime.backends.torch_backend import TorchCudaBackend
from training.model import save_checkpoint

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(random_svbrnet, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("torch_backend") / "random.pt"
    save_checkpoint(path, random_svbrnet, {"note": "random init"})
    return path


def test_importing_the_backend_imports_neither_torch_nor_training():
    script = textwrap.dedent("""
        import sys
        import runtime.backends.torch_backend as module
        assert isinstance(module.TorchCudaBackend.is_available(), bool)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "training"))
        assert not loaded, loaded
        print("OK")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_is_available_is_false_where_torch_cannot_be_imported():
    script = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("blocked")

        sys.meta_path.insert(0, Block())
        from runtime.backends.torch_backend import TorchCudaBackend
        assert TorchCudaBackend.is_available() is False
        assert TorchCudaBackend.is_available(device="cpu") is False
        print("OK")
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present: the refusal cannot be seen")
def test_refuses_cleanly_without_cuda(checkpoint):
    with pytest.raises(RuntimeError, match=r"needs a CUDA GPU.*torch.cuda.is_available\(\) is False"):
        TorchCudaBackend(checkpoint)


def test_refuses_what_is_not_a_checkpoint(random_onnx_model, tmp_path):
    with pytest.raises(RuntimeError, match="runs a PyTorch checkpoint"):
        TorchCudaBackend(random_onnx_model, device="cpu")
    with pytest.raises(FileNotFoundError):
        TorchCudaBackend(tmp_path / "missing.pt", device="cpu")
    with pytest.raises(ValueError, match="half precision is for CUDA"):
        TorchCudaBackend(_touch(tmp_path / "x.pt"), device="cpu", half=True)


def _touch(path: Path) -> Path:
    save_checkpoint(path, torch.nn.Module(), {})  # never loaded: the argument check comes first
    return path


def test_cpu_path_matches_pytorch_and_reuses_its_buffers(checkpoint, random_svbrnet):
    backend = TorchCudaBackend(checkpoint, device="cpu")
    assert isinstance(backend, Backend)
    assert (backend.name, backend.device, backend.precision) == ("torch-cpu", "cpu", "fp32")
    assert backend.metadata["svbr.max_radius_px"] == "6" and backend.metadata["svbr.size_multiple"] == "4"
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 40, 36), dtype=np.float32)
    blur_map = rng.random((2, 1, 40, 36), dtype=np.float32)
    first = backend.run(image, blur_map)
    with torch.no_grad():
        expected = random_svbrnet(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()
    assert first.dtype == np.float32 and first.shape == (2, 3, 40, 36)
    assert np.abs(first - expected).max() < 1e-4
    buffers = {name: tensor.data_ptr() for name, tensor in backend._buffers.items()}
    assert backend._buffers["image"].is_contiguous(memory_format=torch.channels_last)
    second = backend.run(image[::-1].copy(), blur_map[::-1].copy())
    assert {name: tensor.data_ptr() for name, tensor in backend._buffers.items()} == buffers, "buffers reused"
    assert np.abs(second - first[::-1]).max() < 1e-4
    assert not np.shares_memory(second, backend._buffers["sharp_host"].numpy()), "callers get a copy"
    backend.run(image[:1, :, :32, :32].copy(), blur_map[:1, :, :32, :32].copy())  # a new shape reallocates
    assert backend._buffer_shape == (1, 32, 32)
    backend.close()


def test_deblurrer_accepts_the_backend(checkpoint):
    from runtime import Deblurrer

    image = np.random.default_rng(1).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    with Deblurrer(backend=TorchCudaBackend(checkpoint, device="cpu"), tile=16, halo=8) as deblurrer:
        sharp = deblurrer.deblur(image, np.full((30, 26), 1.5, np.float32))
    assert sharp.shape == image.shape and sharp.dtype == np.uint8


def test_registry_entry():
    from runtime.backends import BACKENDS

    if "torch-cuda" not in BACKENDS:
        pytest.skip("torch-cuda is not registered in runtime.backends yet")
    spec = BACKENDS["torch-cuda"]
    assert (spec.module, spec.class_name, spec.options) == (
        "runtime.backends.torch_backend",
        "TorchCudaBackend",
        {"device": "cuda"},
    )


def test_float32_skip_path_adds_the_correction_to_the_input(checkpoint, random_svbrnet):
    """The half-precision CUDA path computes image + correction with a float32 image.

    Half precision needs CUDA; here the same code path runs in float32, where it
    must equal the network's own forward.
    """
    backend = TorchCudaBackend(checkpoint, device="cpu")
    assert backend.metadata["svbr.head"] == "residual" and not backend._exact_skip
    backend._exact_skip = True
    rng = np.random.default_rng(1)
    image = rng.random((1, 3, 32, 36), dtype=np.float32)
    blur_map = rng.random((1, 1, 32, 36), dtype=np.float32)
    with torch.no_grad():
        expected = random_svbrnet(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()
    assert np.abs(backend.run(image, blur_map) - expected).max() < 1e-5
    assert "image_float32" in backend._buffers
