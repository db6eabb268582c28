"""Cross-backend comparison through Polygraphy: its runners and comparator, our SSIM as the comparison.

``svbr validate`` runs every model through a Polygraphy runner
(``Comparator.run``) and compares it with the PyTorch FP32 reference through
``Comparator.compare_accuracy`` with :class:`SsimCompareFunc`, which scores each
output pair with this package's SSIM (:func:`runtime.metrics.ssim`, scikit-image's
definition), PSNR and largest absolute difference:

* ONNX Runtime: ``polygraphy.backend.onnxrt`` (``SessionFromOnnx`` → ``OnnxrtRunner``),
  on the CPU provider, or any provider ONNX Runtime has;
* TensorRT: ``polygraphy.backend.trt`` (``EngineFromBytes`` → ``TrtRunner``) on the
  engine ``svbr build-engine`` builds (strongly typed, engine cache) or is given,
  only where ``tensorrt`` imports;
* anything else, and the PyTorch reference: :class:`CallableRunner` around a
  function or a :class:`runtime.backends.Backend` (Polygraphy's own PyTorch runner
  needs CUDA);
* a uint8-I/O model (``svbr export --io uint8``) runs inside :class:`Uint8IORunner`,
  which feeds it the window as uint8 and the radius in px and returns float RGB,
  so every runner answers the same float-contract feed dicts.

Polygraphy is imported when this module is.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from polygraphy.backend.base import BaseRunner
from polygraphy.common import TensorMetadata

from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, MAX_RADIUS_PX, OUTPUT_NAME
from runtime.metrics import psnr, ssim

#: PSNR (dB) reported for identical outputs, and the cap on every per-sample PSNR.
PSNR_CAP_DB = 100.0


def float_input_metadata() -> TensorMetadata:
    """The float network contract: image N×3×H×W and blur_map N×1×H×W, float32, dynamic N, H, W."""
    metadata = TensorMetadata()
    metadata.add(INPUT_IMAGE_NAME, np.float32, (-1, 3, -1, -1))
    metadata.add(INPUT_MAP_NAME, np.float32, (-1, 1, -1, -1))
    return metadata


def _as_image(output: np.ndarray) -> np.ndarray:
    """1×3×H×W float -> H×W×3 float64 (what runtime.metrics expects)."""
    return np.asarray(output[0], dtype=np.float64).transpose(1, 2, 0)


class SsimResult:
    """One output compared: SSIM, PSNR (capped at ``PSNR_CAP_DB``) and largest absolute difference.

    ``bool()`` is the per-sample verdict Polygraphy logs: finite values and, when ``min_ssim`` is
    set, SSIM ≥ ``min_ssim`` (``svbr validate`` judges the mean itself).
    """

    def __init__(self, ssim: float, psnr_db: float, max_abs: float, min_ssim: float | None = None) -> None:
        self.ssim, self.psnr_db, self.max_abs, self.min_ssim = ssim, psnr_db, max_abs, min_ssim

    def __bool__(self) -> bool:
        if not (np.isfinite(self.ssim) and np.isfinite(self.max_abs)):
            return False
        return self.min_ssim is None or self.ssim >= self.min_ssim

    def __repr__(self) -> str:
        return f"SsimResult(ssim={self.ssim:.6f}, psnr_db={self.psnr_db:.2f}, max_abs={self.max_abs:.3g})"


class SsimCompareFunc:
    """A Polygraphy comparison function (``Comparator.compare_accuracy(compare_func=...)``): our SSIM.

    Called with two ``IterationResult``s (output name -> 1×3×H×W array), returns an ordered dict of
    output name -> :class:`SsimResult` for every output both have.

    Args:
        min_ssim: per-sample SSIM below which Polygraphy logs the iteration as failed (``None``: never).
    """

    def __init__(self, min_ssim: float | None = None) -> None:
        self.min_ssim = min_ssim

    def __call__(self, reference, test) -> OrderedDict[str, SsimResult]:
        results: OrderedDict[str, SsimResult] = OrderedDict()
        for name in reference.keys():
            if name not in test.keys():
                continue
            expected, found = np.asarray(reference[name]), np.asarray(test[name])
            if expected.shape != found.shape:
                results[name] = SsimResult(float("nan"), float("nan"), float("inf"), self.min_ssim)
                continue
            a, b = _as_image(expected), _as_image(found)
            results[name] = SsimResult(
                ssim(a, b),
                min(psnr(a, b), PSNR_CAP_DB),
                float(np.abs(expected.astype(np.float64) - found).max()),
                self.min_ssim,
            )
        return results


class CallableRunner(BaseRunner):
    """A Polygraphy runner around a function ``(image, blur_map) -> sharp`` of the float network contract,
    or around a :class:`runtime.backends.Backend` (opened lazily when ``make`` is a zero-argument factory)."""

    def __init__(
        self,
        function: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
        *,
        make: Callable[[], object] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name, prefix="svbr-runner")
        if (function is None) == (make is None):
            raise ValueError("give a function or a backend factory, not both")
        self._function, self._make = function, make

    def activate_impl(self) -> None:
        self.backend = self._make() if self._make is not None else None
        self.function = self._function
        if self.backend is not None:
            from calibration.validate import float_io_runner

            self.function = float_io_runner(self.backend)

    def get_input_metadata_impl(self) -> TensorMetadata:
        return float_input_metadata()

    def infer_impl(self, feed_dict):
        start = time.perf_counter()
        sharp = self.function(feed_dict[INPUT_IMAGE_NAME], feed_dict[INPUT_MAP_NAME])
        self.inference_time = time.perf_counter() - start
        return OrderedDict([(OUTPUT_NAME, np.asarray(sharp, dtype=np.float32))])

    def deactivate_impl(self) -> None:
        if self.backend is not None:
            self.backend.close()
        del self.backend, self.function


class Uint8IORunner(BaseRunner):
    """The float contract around a Polygraphy runner of a uint8-I/O model (``svbr export --io uint8``).

    The window goes in as uint8 (``rint(x × 255)``, in ``channel_order``) with the radius in px
    (N×H×W); the uint8 output comes back as float RGB N×3×H×W in [0, 1], so the score includes
    the uint8 rounding of input and output, as deployed.
    """

    def __init__(self, inner: BaseRunner, channel_order: str = "bgr", name: str | None = None) -> None:
        super().__init__(name=name or inner.name, prefix="svbr-uint8-io")
        self.inner, self.flip = inner, channel_order.lower() == "bgr"

    def activate_impl(self) -> None:
        self.inner.activate()

    def get_input_metadata_impl(self) -> TensorMetadata:
        return float_input_metadata()

    def infer_impl(self, feed_dict):
        image, blur_map = feed_dict[INPUT_IMAGE_NAME], feed_dict[INPUT_MAP_NAME]
        pixels = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
        pixels = np.ascontiguousarray(pixels[..., ::-1] if self.flip else pixels)
        radius = np.ascontiguousarray(blur_map[:, 0] * np.float32(MAX_RADIUS_PX), dtype=np.float32)
        outputs = self.inner.infer(OrderedDict([(INPUT_IMAGE_NAME, pixels), (INPUT_MAP_NAME, radius)]))
        sharp = np.asarray(outputs[OUTPUT_NAME])
        sharp = sharp[..., ::-1] if self.flip else sharp
        self.inference_time = self.inner.last_inference_time()
        return OrderedDict(
            [(OUTPUT_NAME, np.ascontiguousarray(sharp.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(255))]
        )

    def deactivate_impl(self) -> None:
        self.inner.deactivate()


def onnxruntime_runner(
    model: Path, provider: str = "cpu", threads: int | None = None, name: str | None = None
) -> BaseRunner:
    """``OnnxrtRunner`` on ``SessionFromOnnx`` (or, with ``threads``, a session with that many intra-op
    threads: Polygraphy's loader uses every core)."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx

    if threads is None:
        session = SessionFromOnnx(str(model), providers=[provider])
    else:

        def session():
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            available = [p for p in ort.get_available_providers() if provider.lower() in p.lower()]
            if not available:
                raise RuntimeError(f"ONNX Runtime has no {provider} provider here")
            return ort.InferenceSession(str(model), options, providers=available[:1])

    return OnnxrtRunner(session, name=name or str(model))


def tensorrt_runner(engine: Path, name: str | None = None) -> BaseRunner:
    """``TrtRunner`` on a serialized engine (``EngineFromBytes(BytesFromPath(...))``); needs TensorRT."""
    from polygraphy.backend.common import BytesFromPath
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    return TrtRunner(EngineFromBytes(BytesFromPath(str(engine))), name=name or str(engine))


def quiet_polygraphy():
    """A context in which Polygraphy logs nothing (stdout stays ours; its critical errors still raise).

    The per-sample verdicts it would log are in the results (:class:`SsimResult`)."""
    from polygraphy.logger import G_LOGGER

    return G_LOGGER.verbosity(G_LOGGER.CRITICAL)
