"""PyTorch backend for NVIDIA GPUs without TensorRT: FP16, channels_last, reused buffers.

Registry name: ``torch-cuda``. It runs the PyTorch checkpoint itself (``.pt``,
as written by training), not an ONNX model:
``Deblurrer(backend="torch-cuda", model="training/weights/svbrnet_cpu.pt")``.

The runtime never imports torch or training code, and this module keeps that
rule at import time: torch and ``training.model.load_model`` are imported
inside the constructor only. That lazy import is the one accepted exception to
"runtime does not import training" (the network's definition lives there, and
duplicating it would be worse); a machine without torch never reaches it, since
``is_available`` (a cheap check that imports nothing) is False there and the
constructor is then never called by ``create_backend``.

Per call: the inputs are copied into pinned float32 host tensors, moved to
reused device tensors (float16, channels_last) with non-blocking copies, run
under ``inference_mode``, and copied back into a reused pinned float32 output;
buffers are reallocated only when the window shape changes (all tiles of a
plan share one shape). ``device="cpu"`` runs the same path in float32 (no
pinning): it is what the CPU tests exercise.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Backend, check_network_inputs
from runtime.constants import MAX_RADIUS_PX, MODEL_VERSION, SIZE_MULTIPLE
from runtime.tensorrt_build import nvidia_gpu_present

#: PyTorch checkpoints (``training.model.save_checkpoint``).
CHECKPOINT_SUFFIXES = (".pt", ".pth")


class TorchCudaBackend(Backend):
    """SVBR-Net in PyTorch on a CUDA device.

    Args:
        model_path: a training checkpoint (``.pt``).
        device: ``"cuda"`` (default) or ``"cpu"`` (float32 only; for tests and debugging).
        device_id: CUDA device index.
        half: float16 weights and activations; default True on CUDA, False on CPU.
        channels_last: NHWC memory format (faster convolutions on tensor cores).

    Raises:
        FileNotFoundError: no such checkpoint.
        RuntimeError: not a checkpoint (e.g. an ONNX model), torch missing, or CUDA
            requested but not available (``create_backend("auto")`` then tries the next backend).
    """

    model_suffixes: tuple[str, ...] = CHECKPOINT_SUFFIXES
    option_names = ("device_id", "half", "channels_last")

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        device: str = "cuda",
        device_id: int = 0,
        half: bool | None = None,
        channels_last: bool = True,
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"PyTorch checkpoint not found: {path}")
        if path.suffix not in CHECKPOINT_SUFFIXES:
            # RuntimeError, not ValueError: backend "auto" then moves on to the next backend.
            raise RuntimeError(
                f"the torch-cuda backend runs a PyTorch checkpoint ({'/'.join(CHECKPOINT_SUFFIXES)}), "
                f"not {path.name}; use an onnxruntime or tensorrt backend for ONNX models"
            )
        if device not in ("cuda", "cpu"):
            raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
        try:
            import torch  # lazy: the runtime never imports torch at import time
        except ImportError as error:
            raise RuntimeError("the torch-cuda backend needs PyTorch with CUDA (pip install torch)") from error
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"the torch-cuda backend needs a CUDA GPU, but torch {torch.__version__} sees none "
                "(torch.cuda.is_available() is False); use the onnxruntime-cpu backend instead"
            )
        from training.model import load_model  # lazy: the documented runtime -> training exception

        self._torch = torch
        self._device = torch.device(f"cuda:{device_id}" if device == "cuda" else "cpu")
        self._half = (device == "cuda") if half is None else bool(half)
        if self._half and device == "cpu":
            raise ValueError("half precision is for CUDA; on CPU use half=False")
        self._memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._dtype = torch.float16 if self._half else torch.float32
        model, _ = load_model(path)
        self._model = model.to(self._device, dtype=self._dtype, memory_format=self._memory_format).eval()
        self._exact_skip = self._half and model.head == "residual"
        self._buffers: dict[str, Any] = {}
        self._buffer_shape: tuple[int, int, int] | None = None

        self.model_path = path
        self.name = "torch-cuda" if device == "cuda" else "torch-cpu"
        self.device = str(self._device)
        self.precision = "fp16" if self._half else "fp32"
        self.preferred_batch_size = 4 if device == "cuda" else 1
        self.metadata = {
            "svbr.model_version": MODEL_VERSION,
            "svbr.precision": self.precision,
            "svbr.max_radius_px": f"{MAX_RADIUS_PX:g}",
            "svbr.size_multiple": str(SIZE_MULTIPLE),
            "svbr.head": model.head,
            "svbr.source_checkpoint": path.name,
            "svbr.source_checkpoint_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }

    @classmethod
    def is_available(cls, device: str = "cuda", **_: object) -> bool:
        """torch installed and (for CUDA) an NVIDIA GPU present; imports nothing, never raises.

        A cheap hint: whether this torch build has CUDA is only known once torch
        is imported, which the constructor does (and raises ``RuntimeError`` if not).
        """
        try:
            if importlib.util.find_spec("torch") is None:
                return False
        except Exception:  # a broken or blocking finder: treat as not installed
            return False
        return device == "cpu" or nvidia_gpu_present()

    def _buffers_for(self, batch: int, height: int, width: int) -> dict[str, Any]:
        """Pinned host and device tensors for one window shape, reused until the shape changes."""
        if self._buffer_shape != (batch, height, width):
            torch, pin = self._torch, self._device.type == "cuda"
            self._buffers = {}  # drop the old shape's buffers first (peak memory)

            def host(channels: int) -> Any:
                return torch.empty((batch, channels, height, width), dtype=torch.float32, pin_memory=pin)

            def device(channels: int) -> Any:
                return torch.empty((batch, channels, height, width), dtype=self._dtype, device=self._device).contiguous(
                    memory_format=self._memory_format
                )

            self._buffers = {
                "image_host": host(3),
                "map_host": host(1),
                "sharp_host": host(3),
                "image": device(3),
                "map": device(1),
            }
            if self._exact_skip:
                self._buffers["image_float32"] = torch.empty(
                    (batch, 3, height, width), dtype=torch.float32, device=self._device
                )
            self._buffer_shape = (batch, height, width)
        return self._buffers

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        check_network_inputs(image, blur_map)
        batch, _, height, width = image.shape
        buffers = self._buffers_for(batch, height, width)
        buffers["image_host"].numpy()[...] = image
        buffers["map_host"].numpy()[...] = blur_map
        # Host -> device, converting dtype and layout in the copy (asynchronous from pinned memory).
        buffers["image"].copy_(buffers["image_host"], non_blocking=True)
        buffers["map"].copy_(buffers["map_host"], non_blocking=True)
        with self._torch.inference_mode():
            if self._exact_skip:
                # float16 network, float32 skip path: image + correction as in the exported FP16 graph.
                buffers["image_float32"].copy_(buffers["image_host"], non_blocking=True)
                correction = self._model.correction(buffers["image"], buffers["map"])
                sharp = (buffers["image_float32"] + correction.float()).clamp_(0.0, 1.0)
            else:
                sharp = self._model(buffers["image"], buffers["map"])
            buffers["sharp_host"].copy_(sharp, non_blocking=True)
        if self._device.type == "cuda":
            self._torch.cuda.current_stream(self._device).synchronize()
        return buffers["sharp_host"].numpy().copy()  # a copy: the next call reuses the buffer

    def close(self) -> None:
        self._buffers, self._buffer_shape = {}, None
        self._model = None
        if self._device.type == "cuda":
            self._torch.cuda.empty_cache()
