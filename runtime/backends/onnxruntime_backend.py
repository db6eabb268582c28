"""ONNX Runtime backend: CPU by default, the CUDA or TensorRT execution provider when installed.

Registry names: ``onnxruntime-cpu``, ``onnxruntime-cuda``, ``onnxruntime-tensorrt``.
onnxruntime is imported when a backend is made, not when this module is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from runtime.backends.base import Backend, check_network_inputs, check_uint8_network_inputs, onnx_io, onnx_precision
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, OUTPUT_NAME

#: provider option -> the execution providers to ask for, most wanted first.
#: ORT silently falls back along this list, so the first one is checked after loading.
PROVIDER_CHAINS: dict[str, tuple[str, ...]] = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}


class OnnxRuntimeBackend(Backend):
    """SVBR-Net in an ``onnxruntime.InferenceSession``.

    Args:
        model_path: ONNX model with inputs ``image``, ``blur_map`` and output ``sharp``.
        provider: ``"cpu"``, ``"cuda"`` or ``"tensorrt"`` (ORT's execution providers).
        device_id: GPU index for the CUDA and TensorRT providers.
        threads: intra-op threads for the CPU provider; ``None`` = ORT's default (all cores).
        workspace_mib: TensorRT provider only: workspace limit for the engines it builds.
    """

    option_names = ("threads", "device_id", "workspace_mib")

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        provider: str = "cpu",
        device_id: int = 0,
        threads: int | None = None,
        workspace_mib: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if provider not in PROVIDER_CHAINS:
            raise ValueError(f"unknown ONNX Runtime provider {provider!r}; choose from {sorted(PROVIDER_CHAINS)}")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.model_path}")
        wanted = PROVIDER_CHAINS[provider]
        missing = [p for p in wanted[:1] if p not in ort.get_available_providers()]
        if missing:
            raise RuntimeError(f"this onnxruntime build has no {missing[0]}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        gpu_options = {"device_id": str(device_id)}
        provider_options = {
            "CPUExecutionProvider": {},
            "TensorrtExecutionProvider": {
                **gpu_options,
                **({"trt_max_workspace_size": str(workspace_mib << 20)} if workspace_mib else {}),
            },
        }
        providers = [(p, provider_options.get(p, gpu_options)) for p in wanted]
        self._session = ort.InferenceSession(str(self.model_path), options, providers=providers)
        active = self._session.get_providers()[0]
        if active != wanted[0]:
            # ORT falls back to CPU when e.g. the CUDA libraries fail to load; a
            # backend named "onnxruntime-cuda" must not quietly run on the CPU.
            raise RuntimeError(f"{wanted[0]} failed to load (ONNX Runtime fell back to {active})")
        names = {i.name for i in self._session.get_inputs()}
        if names != {INPUT_IMAGE_NAME, INPUT_MAP_NAME}:
            raise ValueError(f"{self.model_path} is not an SVBR-Net model: inputs {sorted(names)}")
        self.name = f"onnxruntime-{provider}"
        self.device = "cpu" if provider == "cpu" else f"cuda:{device_id}"
        self.preferred_batch_size = 1 if provider == "cpu" else 4
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.precision = onnx_precision(self.model_path, self.metadata)
        self.io, self.io_channel_order = onnx_io(self.metadata)

    @classmethod
    def is_available(cls, provider: str = "cpu", **_: object) -> bool:
        try:
            import onnxruntime as ort
        except ImportError:
            return False
        chain = PROVIDER_CHAINS.get(provider)
        return chain is not None and chain[0] in ort.get_available_providers()

    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        if self.io == "uint8":
            check_uint8_network_inputs(image, blur_map)
        else:
            check_network_inputs(image, blur_map)
        (sharp,) = self._session.run([OUTPUT_NAME], {INPUT_IMAGE_NAME: image, INPUT_MAP_NAME: blur_map})
        return sharp

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]  # drops the session and its arena
