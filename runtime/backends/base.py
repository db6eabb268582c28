"""The one interface every inference backend implements.

A backend is a loader plus a runner (the Polygraphy pattern): the constructor
loads a model file onto a device, :meth:`Backend.run` maps network inputs to
the network output. Everything around the network (normalisation, tiling,
colour order) lives in :mod:`runtime.deblurrer`, so a backend stays a few
dozen lines and all backends are interchangeable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

import numpy as np

from runtime.constants import SIZE_MULTIPLE


class Backend(ABC):
    """A loaded SVBR-Net that maps (image, blur_map) to the sharp image.

    Attributes:
        name: registry name, e.g. ``"onnxruntime-cpu"``.
        device: where it runs, e.g. ``"cpu"`` or ``"cuda:0"``.
        precision: arithmetic of the loaded graph: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        preferred_batch_size: tiles per :meth:`run` call that keep the device busy.
        model_path: the model file it loaded.
        metadata: the model's ``svbr.*`` metadata (strings), empty when it has none.
        io: ``"float32"`` (the network contract of :meth:`run`) or ``"uint8"``
            (``svbr export --io uint8``: :meth:`run` takes uint8 N×H×W×3 windows in
            ``io_channel_order`` and radii in px, N×H×W float32, and returns uint8 N×H×W×3).
        io_channel_order: ``"bgr"`` or ``"rgb"``: the channel order of a uint8-I/O model.
        option_names: the :class:`~runtime.backends.options.BackendOptions` fields the constructor
            reads (as keyword arguments of the same names); ``create_backend`` passes only these.
    """

    option_names: tuple[str, ...] = ()
    name: str
    device: str
    precision: str
    preferred_batch_size: int = 1
    model_path: Path
    metadata: dict[str, str]
    io: str = "float32"
    io_channel_order: str = "rgb"

    @classmethod
    def is_available(cls, **options: object) -> bool:
        """Whether this machine can run the backend (libraries, devices); cheap, never raises."""
        return True

    @classmethod
    def unavailable_reason(cls, **options: object) -> str:
        """One sentence for users when :meth:`is_available` is False: what is missing and how to get it."""
        return "its libraries or device are missing on this machine"

    @abstractmethod
    def run(self, image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        """Run the network.

        Args:
            image: float32 N×3×H×W, RGB in [0, 1]; H, W multiples of ``SIZE_MULTIPLE``.
            blur_map: float32 N×1×H×W, radius / ``MAX_RADIUS_PX`` in [0, 1].

        Returns:
            float32 N×3×H×W, RGB in (0, 1).
        """

    def close(self) -> None:
        """Release the device resources (sessions, engines); the backend is unusable after."""
        return None  # a backend without device resources has nothing to release

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, device={self.device!r}, "
            f"precision={self.precision!r}, model={str(self.model_path)!r})"
        )


def check_network_inputs(image: np.ndarray, blur_map: np.ndarray) -> None:
    """Raise ``ValueError`` unless the arrays follow the network contract of SPEC §1."""
    if image.dtype != np.float32 or blur_map.dtype != np.float32:
        raise ValueError(f"network inputs must be float32, got {image.dtype} and {blur_map.dtype}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be N×3×H×W, got shape {image.shape}")
    n, _, height, width = image.shape
    if blur_map.shape != (n, 1, height, width):
        raise ValueError(f"blur_map must be N×1×H×W = {(n, 1, height, width)}, got {blur_map.shape}")
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"H and W must be multiples of {SIZE_MULTIPLE}, got {height}×{width}")


def check_uint8_network_inputs(image: np.ndarray, blur_map: np.ndarray) -> None:
    """Raise ``ValueError`` unless the arrays fit a uint8-I/O graph: uint8 N×H×W×3 and float32 N×H×W radii in px."""
    if image.dtype != np.uint8 or blur_map.dtype != np.float32:
        raise ValueError(f"uint8-I/O inputs must be uint8 and float32, got {image.dtype} and {blur_map.dtype}")
    if image.ndim != 4 or image.shape[3] != 3:
        raise ValueError(f"image must be N×H×W×3, got shape {image.shape}")
    n, height, width, _ = image.shape
    if blur_map.shape != (n, height, width):
        raise ValueError(f"blur_map must be N×H×W = {(n, height, width)}, got {blur_map.shape}")
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ValueError(f"H and W must be multiples of {SIZE_MULTIPLE}, got {height}×{width}")


def onnx_io(metadata: dict[str, str]) -> tuple[str, str]:
    """(I/O kind, channel order) of a model from its ``svbr.io`` / ``svbr.channel_order`` metadata."""
    kind = metadata.get("svbr.io", "float32")
    if kind not in ("float32", "uint8"):
        raise ValueError(f"unknown svbr.io {kind!r} in the model's metadata")
    return kind, metadata.get("svbr.channel_order", "RGB").lower()


def onnx_precision(model_path: Path, metadata: dict[str, str]) -> str:
    """Arithmetic of an ONNX graph: its ``svbr.precision`` metadata, else read from the graph.

    QuantizeLinear nodes mean ``"int8"``; float16 weights mean ``"fp16"``; otherwise ``"fp32"``.
    """
    if "svbr.precision" in metadata:
        return metadata["svbr.precision"]
    import onnx  # only when the metadata does not say: parsing the graph costs time

    graph = onnx.load(str(model_path), load_external_data=False).graph
    if any(node.op_type == "QuantizeLinear" for node in graph.node):
        return "int8"
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.initializer):
        return "fp16"
    return "fp32"
