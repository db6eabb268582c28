"""INT8 graph: explicit QuantizeLinear/DequantizeLinear pairs on every Conv and ConvTranspose.

The quantizer is ONNX Runtime's static QDQ quantizer (``quantize_static``),
configured as NVIDIA's ModelOpt configures it for TensorRT
(``modelopt.onnx.quantization.ort_utils.configure_ort``):

* symmetric int8 activations (zero point 0), one scale per tensor, from the
  calibration set; a tensor read by several convolutions gets one shared pair;
* symmetric int8 weights, one scale per output channel: axis 0 of a Conv
  weight (O×I×kH×kW), axis 1 of a ConvTranspose weight (I×O×kH×kW); the float
  weights stay in the graph behind their own Q→DQ pair, TensorRT folds them
  into int8 at build time;
* no quantized outputs and no quantized biases (TensorRT takes float biases
  and chooses the output precision itself); ReLU, Add, AveragePool, Concat,
  Clip and Sigmoid stay float32;
* the residual head's skip path stays exact: its Add reads the float input
  image, not the image's int8 copy that the first convolution reads.

Method: percentile (99.9) by default. SVBR-Net is a deblurring, i.e. inverse,
filter: it amplifies the noise that quantization adds, so resolution matters
more than range. A few activations reach ~146 while most stay within a few
units, and MinMax scales spend the int8 grid on those few. Measured on an
intermediate checkpoint (16 calibration windows of 424 px, 16 validation
samples of 256 px, mean SSIM against PyTorch FP32): MinMax 0.863; percentile
99.999 0.919, 99.99 0.984, 99.9 0.998, 99.5 0.995, 99.0 0.988 (and 0.57 dB
lost against the ground truth); Entropy 0.996 but seven times slower here
(663 s against 94 s for 16 windows).

The calibration set is a list of cached windows (:mod:`calibration.dataset`),
fed one window per inference; ORT's calibrators collect activation ranges
(MinMax), or histograms (Entropy, Percentile) in strides of
``CALIBRATION_STRIDE`` windows so memory stays bounded.

Note on ConvTranspose: TensorRT 8 kernels accepted only per-*input*-channel
weight scales for deconvolution (NVIDIA/TensorRT#2380); ModelOpt, written for
TensorRT 10, quantizes ConvTranspose weights per output channel (axis 1), and so
does ORT; this follows them. It is the one INT8 detail to confirm on a GPU
(``svbr validate --backend tensorrt``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from calibration.dataset import read_window_sample
from calibration.fp16 import residual_head_nodes
from calibration.graph import WEIGHT_CHANNEL_AXIS, WEIGHTED_OPS, drop_unused_opsets
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME

#: ``--method`` -> ONNX Runtime CalibrationMethod name.
CALIBRATION_METHODS: dict[str, str] = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}

#: The method ``svbr calibrate`` uses unless told otherwise (see the README's INT8 table).
DEFAULT_METHOD = "percentile"

#: Percentile of |activation| kept by the "percentile" method (the rest saturates).
DEFAULT_PERCENTILE = 99.9

#: Windows per histogram update for the histogram methods (bounds memory).
CALIBRATION_STRIDE = 1

#: ``--target``: who runs the INT8 graph. "tensorrt": symmetric int8 QDQ on the
#: convolutions only (TensorRT's pattern; ONNX Runtime CPU runs it as float
#: convolutions). "cpu": the QDQ pattern ONNX Runtime's CPU provider fuses into
#: integer kernels (QLinearConv, QLinearAdd, QLinearConcat, QLinearAveragePool):
#: asymmetric uint8 activations, symmetric int8 per-output-channel weights,
#: int32 biases, every Conv/Add/Concat/AveragePool output quantized (ReLUs folded
#: into the quantization range).
TARGETS: tuple[str, ...] = ("tensorrt", "cpu")

#: 7-bit weights ([-64, 64]) for the CPU target. Without AVX512-VNNI / AVX-VNNI, ONNX Runtime's
#: u8s8 kernels multiply with vpmaddubsw, whose int16 pair sums saturate with full 8-bit weights:
#: measured on this AVX2 machine (16 calibration windows, 16 validation samples), the same QDQ graph
#: scored mean SSIM 0.9925 against FP32 as simulated quantization (optimisations off) but 0.913 on
#: the integer kernels. With |w| <= 64, 2 × 255 × 64 < 2^15 cannot saturate (ORT's documented remedy).
CPU_REDUCE_RANGE = True

#: Operators the CPU target quantizes (their outputs too, so ORT can chain integer kernels).
#: ConvTranspose stays float: ONNX Runtime's CPU provider has no integer ConvTranspose kernel,
#: a QDQ pair around it would only add conversions.
CPU_QUANTIZED_OPS: tuple[str, ...] = ("Conv", "Add", "Concat", "AveragePool", "Relu")


class WindowReader:
    """An ONNX Runtime ``CalibrationDataReader`` over cached calibration windows.

    Loads one window per ``get_next`` call (windows of different sizes are
    fine: the graph has dynamic H and W). ``set_range`` and ``len`` let
    ``quantize_static`` feed the histogram calibrators in strides.
    """

    def __init__(self, sample_paths: Sequence[Path]) -> None:
        if not sample_paths:
            raise ValueError("the calibration set is empty")
        self.sample_paths = list(sample_paths)
        self._start, self._stop = 0, len(self.sample_paths)
        self._next = 0

    def __len__(self) -> int:
        return len(self.sample_paths)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._stop, self._next = start_index, min(end_index, len(self)), start_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._stop:
            return None
        image, blur_map = read_window_sample(self.sample_paths[self._next]).network_inputs()
        self._next += 1
        return {INPUT_IMAGE_NAME: image, INPUT_MAP_NAME: blur_map}

    def rewind(self) -> None:
        self._next = self._start


@dataclass(frozen=True)
class Int8Settings:
    """How ``quantize_int8`` calibrates.

    Attributes:
        method: one of ``CALIBRATION_METHODS``.
        percentile: for ``"percentile"``: the percentile of |x| that maps to 127 (target
            ``"cpu"``: asymmetric, (100 − percentile) / 2 % cut off at each end).
        target: one of ``TARGETS`` (``"tensorrt"``, the default, or ``"cpu"``).
    """

    method: str = DEFAULT_METHOD
    percentile: float = DEFAULT_PERCENTILE
    target: str = "tensorrt"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown INT8 target {self.target!r}; choose from {TARGETS}")
        if self.method not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration method {self.method!r}; choose from {sorted(CALIBRATION_METHODS)}")
        if not 0.0 < self.percentile <= 100.0:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile}")


def quantize_int8(model: onnx.ModelProto, sample_paths: Sequence[Path],
                  settings: Int8Settings = Int8Settings()) -> onnx.ModelProto:
    """Insert calibrated QDQ pairs on every Conv/ConvTranspose of an FP32 graph.

    Args:
        model: the FP32 graph of ``svbr export`` (not modified).
        sample_paths: cached calibration windows (:func:`calibration.dataset.build_set`).
        settings: calibration method.

    Returns:
        The quantized model; opset imports the graph does not use are dropped.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = WindowReader(sample_paths)
    ops = {node.op_type for node in model.graph.node}
    extra_options = {
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        "QuantizeBias": False,
        "AddQDQPairToWeight": True,
        "DedicatedQDQPair": False,
        # No output quantization: QDQ only where a convolution reads.
        "OpTypesToExcludeOutputQuantization": sorted(ops),
        "QDQOpTypePerChannelSupportToAxis": dict(WEIGHT_CHANNEL_AXIS),
        "CalibTensorRangeSymmetric": True,
        # Not "CalibMaxIntermediateOutputs": in ORT 1.32 it discards the collected ranges instead of
        # merging them ("No data is collected."); MinMax keeps only per-tensor min/max anyway.
    }
    if settings.method != "minmax":
        extra_options["CalibStridedMinMax"] = CALIBRATION_STRIDE  # histograms: feed in strides
    if settings.method == "percentile":
        extra_options["CalibPercentile"] = settings.percentile
    quantize_options = {"op_types_to_quantize": list(WEIGHTED_OPS), "activation_type": QuantType.QInt8}
    if settings.target == "cpu":
        # ONNX Runtime CPU: fused DQ→Conv→Q = QLinearConv needs quantized outputs and int32 biases;
        # asymmetric uint8 activations are what its (VNNI) u8s8 kernels take.
        extra_options.update({"ActivationSymmetric": False, "CalibTensorRangeSymmetric": False,
                              "QuantizeBias": True, "OpTypesToExcludeOutputQuantization": [],
                              "AddQDQPairToWeight": False})  # int8 weights stored as such: a 4x smaller file
        quantize_options = {"op_types_to_quantize": list(CPU_QUANTIZED_OPS), "activation_type": QuantType.QUInt8,
                            "nodes_to_exclude": residual_head_nodes(model),
                            "reduce_range": CPU_REDUCE_RANGE}
    # ORT's histogram collector print()s a line per window: keep stdout for our own summary.
    with tempfile.TemporaryDirectory(prefix="svbr-int8-") as tmp, _quiet("root"), \
            contextlib.redirect_stdout(io.StringIO()):
        source, prepared, quantized = (os.path.join(tmp, name) for name in ("in.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, source)
        # Shape inference only (no ORT graph rewriting): the quantizer needs tensor types.
        quant_pre_process(source, prepared, skip_optimization=True, skip_symbolic_shape=True)
        quantize_static(
            prepared, quantized, reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            **quantize_options,
            calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHODS[settings.method]),
            extra_options=extra_options,
        )
        result = onnx.load(quantized)
    _float_skip_path(model, result)
    drop_unused_opsets(result)
    del result.graph.value_info[:]  # the exported graph carries none; runtimes infer shapes
    return result


def _float_skip_path(source: onnx.ModelProto, quantized: onnx.ModelProto) -> None:
    """Feed the residual head's Add the float input image again (in place).

    The quantizer gives every reader of a quantized tensor its DequantizeLinear
    output, the head's Add included; the skip path would then carry the image
    through int8 (1/127 of its range, ~2 uint8 levels) for nothing. The Add
    stays a float op either way: this only restores its exact operand.
    """
    head = residual_head_nodes(source)
    if not head:
        return
    original = next(n for n in source.graph.node if n.name == head[0])
    add = next(n for n in quantized.graph.node if n.name == head[0])
    position = list(original.input).index(INPUT_IMAGE_NAME)
    add.input[position] = INPUT_IMAGE_NAME


class _quiet:
    """Silence a logger below ERROR (ORT's quantizer logs a warning per graph it touches)."""

    def __init__(self, name: str) -> None:
        self.logger = logging.getLogger(name if name != "root" else None)

    def __enter__(self) -> None:
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)
