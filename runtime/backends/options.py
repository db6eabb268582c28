"""Typed backend options: one small dataclass every backend reads what it uses from.

Mirrors the C++ SDK's ``BackendOptions``. ``create_backend`` (and so ``Deblurrer``) takes
these options whatever backend is chosen: each backend class names the fields it uses in
``Backend.option_names`` and gets only those, so ``Deblurrer(threads=2)`` works when
``"auto"`` picks TensorRT (which has no CPU threads to set) just as when it picks ONNX Runtime.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BackendOptions:
    """Options for the inference backends; ``None`` = the backend's own default.

    Attributes:
        threads: CPU intra-op threads (``onnxruntime-cpu``); GPU backends ignore it.
        device_id: CUDA device index (``onnxruntime-cuda``/``-tensorrt``, ``tensorrt``, ``torch-cuda``);
            default 0. ``BackendOptions.from_kwargs(device="cuda:1")`` sets it from a device string.
        workspace_mib: TensorRT workspace limit in MiB for engines built at run time
            (``onnxruntime-tensorrt``); prebuilt engines (``tensorrt``) fix theirs at build time.
        engine_cache: engine cache folder where the ``tensorrt`` backend looks up the engine
            built for an ONNX model (default: the builder's).
        half: float16 weights and activations (``torch-cuda``; default on CUDA).
        channels_last: NHWC memory format (``torch-cuda``; default True).
    """

    threads: int | None = None
    device_id: int | None = None
    workspace_mib: int | None = None
    engine_cache: str | os.PathLike[str] | None = None
    half: bool | None = None
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {self.threads}")
        if self.device_id is not None and self.device_id < 0:
            raise ValueError(f"device_id must be >= 0, got {self.device_id}")
        if self.workspace_mib is not None and self.workspace_mib < 1:
            raise ValueError(f"workspace_mib must be >= 1 MiB or None, got {self.workspace_mib}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every documented option name."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, base: BackendOptions | None = None, **kwargs: Any) -> BackendOptions:
        """``base`` updated with ``kwargs``; ``device`` (``"cuda:N"``, ``"cuda"`` or ``N``) sets ``device_id``.

        Raises:
            TypeError: an option no backend knows (naming the documented ones).
        """
        if "device" in kwargs:
            kwargs["device_id"] = _device_index(kwargs.pop("device"))
        unknown = sorted(set(kwargs) - set(cls.names()))
        if unknown:
            raise TypeError(
                f"unknown backend option(s) {', '.join(unknown)}; the options are {', '.join(cls.names())} (and device)"
            )
        return dataclasses.replace(base or cls(), **kwargs)

    def for_backend(self, option_names: tuple[str, ...]) -> dict[str, Any]:
        """The options among ``option_names`` that are set (not None), as constructor keywords."""
        return {name: getattr(self, name) for name in option_names if getattr(self, name) is not None}

    def ignored_by(self, option_names: tuple[str, ...]) -> list[str]:
        """The options that are set but that a backend using ``option_names`` does not read."""
        return [name for name in self.names() if getattr(self, name) is not None and name not in option_names]


def _device_index(device: object) -> int | None:
    if device is None:
        return None
    if isinstance(device, int):
        return device
    text = str(device).strip().lower()
    if text == "cuda":
        return 0
    if text.startswith("cuda:"):
        text = text[5:]
    if not text.isdigit():
        raise ValueError(f"device must be cuda, cuda:N or N, got {device!r}")
    return int(text)
