"""TensorRT backend: a prebuilt engine (``svbr build-engine``) run through the named-tensor API.

Registry name: ``tensorrt``. ``Deblurrer(backend="tensorrt", model="svbrnet_int8.engine")``.

Per engine, once: a CUDA stream, one device buffer and one pinned (page-locked)
host buffer per I/O tensor, each sized for the profile's largest shape, and the
tensor addresses bound to the execution context. Per call: copy the inputs into
the pinned buffers, ``set_input_shape`` for both inputs, asynchronous
host→device copies, ``execute_async_v3``, device→host copy, synchronise; no
allocation except the returned array (a copy, so a later call cannot overwrite
what a caller holds).

The engine's precision and ``svbr.*`` metadata come from the JSON sidecar
written by ``svbr build-engine``. The model may also be the ONNX file itself
once ``svbr build-engine`` has built it on this machine: the engine is then
looked up in the engine cache (never built here: a build takes minutes).

An engine built from a uint8-I/O model (``svbr export --io uint8``) takes uint8
N×H×W×3 windows and radii in px and returns uint8 (``io`` = ``"uint8"``, from the
sidecar's ``svbr.io``): only uint8 crosses the bus, and the conversion runs on the GPU.

tensorrt and pycuda are imported when a backend is made, never when this
module is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runtime.backends.base import Backend, check_network_inputs, check_uint8_network_inputs, onnx_io
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, OUTPUT_NAME, PRECISIONS
from runtime.tensorrt_build import (
    INSTALL_HINT,
    find_cached_engine,
    nvidia_gpu_present,
    read_engine_metadata,
    require_tensorrt,
    tensorrt_installed,
    window_dims,
    window_shape,
)

#: Engine files; an ``.onnx`` path is looked up in the engine cache.
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


class TensorRTBackend(Backend):
    """SVBR-Net as a deserialised TensorRT engine on one CUDA device.

    Args:
        model_path: an engine (``.engine``/``.plan``/``.trt``) or an ONNX model
            already built by ``svbr build-engine`` on this machine.
        device_id: CUDA device index.
        engine_cache: engine cache folder for ONNX lookups (default: the builder's).

    Raises:
        TensorRTUnavailable: tensorrt or pycuda missing (a ``RuntimeError``).
        FileNotFoundError: no such file.
        RuntimeError: the engine does not deserialise here (other TensorRT
            version or GPU), or no engine was built for the ONNX model.
        ValueError: the engine is not an SVBR-Net (wrong tensor names).
    """

    model_suffixes: tuple[str, ...] = (*ENGINE_SUFFIXES, ".onnx")
    option_names = ("device_id", "engine_cache")

    def __init__(
        self, model_path: str | os.PathLike[str], device_id: int = 0, engine_cache: str | os.PathLike[str] | None = None
    ) -> None:
        trt = require_tensorrt()
        import pycuda.driver as cuda

        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"TensorRT engine not found: {path}")
        if path.suffix not in self.model_suffixes:
            # RuntimeError: backend "auto" then moves on to the next backend.
            raise RuntimeError(
                f"the tensorrt backend runs engines ({'/'.join(ENGINE_SUFFIXES)}) or ONNX models "
                f"built by `svbr build-engine`, not {path.name}"
            )
        if path.suffix == ".onnx":
            engine_path = find_cached_engine(path, None if engine_cache is None else Path(engine_cache), device_id)
            if engine_path is None:
                raise RuntimeError(
                    f"no TensorRT engine has been built for {path} on this machine; build one with "
                    f"`svbr build-engine --model {path} -o {path.with_suffix('.engine')}`"
                )
            path = engine_path
        self.model_path = path
        sidecar = read_engine_metadata(path)
        self.metadata: dict[str, str] = dict(sidecar.get("svbr", {}))
        precision = self.metadata.get("svbr.precision", "unknown")
        self.precision = precision if precision in PRECISIONS else "unknown"
        self.io, self.io_channel_order = onnx_io(self.metadata)
        self.name = "tensorrt"
        self.device = f"cuda:{device_id}"

        cuda.init()
        self._cuda = cuda
        self._context = cuda.Device(device_id).retain_primary_context()
        self._context.push()  # TensorRT and pycuda both work in the current context
        try:
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if self._engine is None:
                raise RuntimeError(
                    f"TensorRT {trt.__version__} could not load {path}: engines only run with the "
                    "TensorRT version and GPU model that built them; rebuild with `svbr build-engine`"
                )
            self._setup_buffers(trt)
        except BaseException:
            self._engine = None
            self._cuda.Context.pop()
            self._context.detach()  # release the primary context we retained
            raise
        self._cuda.Context.pop()

    def _setup_buffers(self, trt: Any) -> None:
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if set(inputs) != {INPUT_IMAGE_NAME, INPUT_MAP_NAME} or outputs != [OUTPUT_NAME]:
            raise ValueError(f"{self.model_path} is not an SVBR-Net engine: inputs {inputs}, outputs {outputs}")
        # Profile 0 (the only one svbr build-engine makes): (min, opt, max) per input.
        self._profile = {
            name: tuple(tuple(int(d) for d in shape) for shape in engine.get_tensor_profile_shape(name, 0))
            for name in inputs
        }
        _, optimum, maximum = self._profile[INPUT_IMAGE_NAME]
        largest_batch, height, width = window_dims(self.io, maximum)
        self.preferred_batch_size = int(optimum[0])  # the batch the engine was tuned for
        largest = {
            name: window_shape(self.io, largest_batch, channels, height, width)
            for name, channels in ((INPUT_IMAGE_NAME, 3), (INPUT_MAP_NAME, 1), (OUTPUT_NAME, 3))
        }
        self._stream = self._cuda.Stream()
        self._execution = engine.create_execution_context()
        self._device_buffers: dict[str, Any] = {}
        self._host_buffers: dict[str, np.ndarray] = {}
        for name in (*inputs, OUTPUT_NAME):
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            count = int(np.prod(largest[name]))
            self._host_buffers[name] = self._cuda.pagelocked_empty(count, dtype)
            self._device_buffers[name] = self._cuda.mem_alloc(count * dtype.itemsize)
            # Addresses never change, so they are bound once, not per call.
            self._execution.set_tensor_address(name, int(self._device_buffers[name]))

    @classmethod
    def is_available(cls, **_: object) -> bool:
        """tensorrt and pycuda installed and an NVIDIA GPU present (imports nothing; never raises)."""
        return tensorrt_installed() and nvidia_gpu_present()

    @classmethod
    def unavailable_reason(cls, **_: object) -> str:
        return INSTALL_HINT if not tensorrt_installed() else "TensorRT is installed but no NVIDIA GPU is visible"

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        (low, _, high) = (window_dims(self.io, s) for s in self._profile[INPUT_IMAGE_NAME])
        n, height, width = window_dims(self.io, shape)
        if not (low[0] <= n <= high[0] and low[1] <= height <= high[1] and low[2] <= width <= high[2]):
            raise ValueError(
                f"input of {n} window(s) of {height}×{width} px is outside the engine's profile (batch "
                f"{low[0]}..{high[0]}, {low[1]}..{high[1]} × {low[2]}..{high[2]} px): use the Deblurrer tile, halo "
                "and batch the engine was built for (svbr build-engine --tile/--halo/--max-batch)"
            )

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        """Float I/O: the network contract (float32 N×3×H×W, N×1×H×W → N×3×H×W); uint8 I/O: see the module notes."""
        if self.io == "uint8":
            check_uint8_network_inputs(image, blur_map)
        else:
            check_network_inputs(image, blur_map)
        self._check_shape(image.shape)
        cuda, stream = self._cuda, self._stream
        self._context.push()
        try:
            for name, array in ((INPUT_IMAGE_NAME, image), (INPUT_MAP_NAME, blur_map)):
                host = self._host_buffers[name][: array.size].reshape(array.shape)
                np.copyto(host, array, casting="same_kind")
                self._execution.set_input_shape(name, array.shape)
                cuda.memcpy_htod_async(self._device_buffers[name], host, stream)
            if not self._execution.execute_async_v3(stream.handle):
                raise RuntimeError("TensorRT execution failed (see the TensorRT log)")
            shape = tuple(int(d) for d in self._execution.get_tensor_shape(OUTPUT_NAME))
            output = self._host_buffers[OUTPUT_NAME][: int(np.prod(shape))].reshape(shape)
            cuda.memcpy_dtoh_async(output, self._device_buffers[OUTPUT_NAME], stream)
            stream.synchronize()
            return output.copy() if self.io == "uint8" else output.astype(np.float32, copy=True)
        finally:
            cuda.Context.pop()

    def close(self) -> None:
        if getattr(self, "_engine", None) is None:
            return
        self._context.push()
        try:
            for buffer in self._device_buffers.values():
                buffer.free()
            self._execution = self._engine = self._runtime = None
            self._device_buffers, self._host_buffers = {}, {}
        finally:
            self._cuda.Context.pop()
            self._context.detach()
