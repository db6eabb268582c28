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
lost against the ground truth). The README's precision section compares
percentile with entropy and with more calibration windows on the bundled weights.

``entropy`` is TensorRT's entropy calibration ("entropy calibrator 2", the
KL-divergence search of Migacz, *8-bit Inference with TensorRT*, GTC 2017), as
NVIDIA publishes it in pytorch-quantization and ModelOpt
(``_compute_amax_entropy``): a histogram of |x| in 2048 bins (grown in bins of
the same width when a later window reaches further), then for every
candidate end bin i ≥ 128 the KL divergence between the clipped reference
distribution P (the first i bins, the counts beyond added to the last) and
its 128-level quantization Q (expanded back over the non-empty bins), and the
amax = the upper edge of the bin that minimises it (the last one on ties;
bin 0, where ReLU zeros pile up, counts as bin 1). It is computed here
(:func:`entropy_amax`, histograms by :class:`AbsHistogram`) and handed to
ONNX Runtime's quantizer as a calibration cache: ORT's own ``Entropy``
calibrator is a different algorithm (a signed 128-bin histogram; at its
default 128 quantized bins it has a single candidate, the full range).

The calibration set is a list of cached windows (:mod:`calibration.dataset`),
fed one window per inference; ORT's calibrators collect activation ranges
(MinMax) or histograms (Percentile) in strides of ``CALIBRATION_STRIDE``
windows so memory stays bounded; entropy's histograms are collected one
window at a time too.

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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from calibration.dataset import read_window_sample
from calibration.fp16 import residual_head_nodes
from calibration.graph import WEIGHT_CHANNEL_AXIS, WEIGHTED_OPS, drop_unused_opsets
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME

#: ``--method`` -> what it is.
CALIBRATION_METHODS: dict[str, str] = {
    "minmax": "ONNX Runtime MinMax: the largest |x| seen",
    "entropy": "TensorRT entropy calibration 2: minimum KL divergence on a 2048-bin |x| histogram",
    "percentile": "ONNX Runtime Percentile: the given percentile of |x| (2048-bin histogram)",
}

#: ``--method`` -> the ONNX Runtime CalibrationMethod that quantize_static is given. Entropy's ranges are
#: computed here and passed as a calibration cache, labelled with the method it is passed with.
ORT_METHODS: dict[str, str] = {"minmax": "MinMax", "entropy": "Percentile", "percentile": "Percentile"}

#: Entropy calibration: histogram bins of |x| at the first window, quantized levels (int8: 128 per sign),
#: and the first candidate end bin (TensorRT's and pytorch-quantization's values).
ENTROPY_BINS = 2048
ENTROPY_LEVELS = 128
ENTROPY_START_BIN = 128

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


def quantize_int8(
    model: onnx.ModelProto, sample_paths: Sequence[Path], settings: Int8Settings = Int8Settings()
) -> onnx.ModelProto:
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
    cache_path = None
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
    if settings.method == "percentile":
        extra_options["CalibStridedMinMax"] = CALIBRATION_STRIDE  # histograms: feed in strides
    if settings.method == "percentile":
        extra_options["CalibPercentile"] = settings.percentile
    quantize_options = {"op_types_to_quantize": list(WEIGHTED_OPS), "activation_type": QuantType.QInt8}
    if settings.target == "cpu":
        # ONNX Runtime CPU: fused DQ→Conv→Q = QLinearConv needs quantized outputs and int32 biases;
        # asymmetric uint8 activations are what its (VNNI) u8s8 kernels take.
        extra_options.update(
            {
                "ActivationSymmetric": False,
                "CalibTensorRangeSymmetric": False,
                "QuantizeBias": True,
                "OpTypesToExcludeOutputQuantization": [],
                "AddQDQPairToWeight": False,
            }
        )  # int8 weights stored as such: a 4x smaller file
        quantize_options = {
            "op_types_to_quantize": list(CPU_QUANTIZED_OPS),
            "activation_type": QuantType.QUInt8,
            "nodes_to_exclude": residual_head_nodes(model),
            "reduce_range": CPU_REDUCE_RANGE,
        }
    # ORT's histogram collector print()s a line per window: keep stdout for our own summary.
    with (
        tempfile.TemporaryDirectory(prefix="svbr-int8-") as tmp,
        _quiet("root"),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        source, prepared, quantized = (os.path.join(tmp, name) for name in ("in.onnx", "pre.onnx", "int8.onnx"))
        onnx.save(model, source)
        # Shape inference only (no ORT graph rewriting): the quantizer needs tensor types.
        quant_pre_process(source, prepared, skip_optimization=True, skip_symbolic_shape=True)
        if settings.method == "entropy":
            # TensorRT's entropy calibration, computed here; the quantizer reads the ranges from a cache.
            # TensorRT target: only the convolutions' inputs are quantized (no output quantization).
            tensors = calibration_tensors(
                model, quantize_options["op_types_to_quantize"], outputs=settings.target == "cpu"
            )
            ranges = entropy_ranges(model, tensors, sample_paths, symmetric=settings.target == "tensorrt")
            cache_path = os.path.join(tmp, "ranges.json")
            _save_ranges(ranges, cache_path, ORT_METHODS["entropy"])
        quantize_static(
            prepared,
            quantized,
            None if cache_path else reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            weight_type=QuantType.QInt8,
            **quantize_options,
            calibrate_method=getattr(CalibrationMethod, ORT_METHODS[settings.method]),
            extra_options=extra_options,
            calibration_cache_path=cache_path,
        )
        result = onnx.load(quantized)
    _float_skip_path(model, result)
    drop_unused_opsets(result)
    del result.graph.value_info[:]  # the exported graph carries none; runtimes infer shapes
    return result


def entropy_amax(
    hist: np.ndarray, edges: np.ndarray, levels: int = ENTROPY_LEVELS, start_bin: int = ENTROPY_START_BIN
) -> float:
    """TensorRT's entropy calibration: the |x| threshold that minimises KL(P ‖ Q) on a histogram of |x|.

    For each candidate end bin ``i`` (``start_bin`` … ``len(hist)``): P = the first ``i`` bins with the
    counts beyond them added to the last; Q = the first ``i`` bins merged into ``levels`` quantized
    levels, each level's count spread evenly over its non-empty bins (empty bins stay empty). Both are
    normalised; the result is the upper edge of the minimising ``i`` (the last minimum on ties).
    Bin 0 counts as bin 1 (NVIDIA's implementations do this so that ReLU zeros do not dominate).

    Args:
        hist: counts of |x| per bin (bin 0 starts at 0).
        edges: ``len(hist) + 1`` bin edges.
        levels: quantized levels per sign (128 for int8).
        start_bin: smallest candidate ``i``.

    Returns:
        The amax (a float); the histogram's upper edge when it has fewer than ``start_bin`` bins.
    """
    bins = np.asarray(hist, dtype=np.float64).copy()
    edges = np.asarray(edges, dtype=np.float64)
    if bins.ndim != 1 or edges.shape != (bins.size + 1,):
        raise ValueError(f"need n counts and n + 1 edges, got {bins.shape} and {edges.shape}")
    if bins.size < start_bin or not bins.any():
        return float(edges[-1])
    if bins.size > 1:
        bins[0] = bins[1]
    tail = np.concatenate([np.cumsum(bins[::-1])[::-1][1:], [0.0]])  # tail[i - 1] = sum(bins[i:])
    best_i, best_kl = bins.size, np.inf
    for i in range(start_bin, bins.size + 1):
        source = bins[:i]
        reference = source.copy()
        reference[-1] += tail[i - 1]
        level = np.digitize(np.arange(i), np.linspace(0, i, num=levels + 1)) - 1
        nonzero = source != 0
        level_sum = np.bincount(level, weights=source, minlength=levels)
        level_bins = np.bincount(level, weights=nonzero, minlength=levels)
        candidate = np.where(nonzero, level_sum[level] / np.maximum(level_bins[level], 1), 0.0)
        total = candidate.sum()
        if total == 0:  # nothing inside the candidate range (all of it beyond): no usable threshold
            continue
        p, q = reference / reference.sum(), candidate / total
        support = p > 0
        if np.any(q[support] == 0):
            kl = np.inf
        else:
            kl = float(np.sum(p[support] * np.log(p[support] / q[support])))
        if kl <= best_kl:  # "<=": the last minimum, as NVIDIA's implementations pick
            best_i, best_kl = i, kl
    return float(edges[best_i])


class AbsHistogram:
    """A histogram of |x| as TensorRT's entropy calibration collects it.

    The first non-zero batch fixes the bin width: ``bins`` bins over [0, max |x|]; a later batch
    reaching further appends bins of the same width (past ``MAX_GROWTH`` × ``bins`` bins, neighbouring
    bins merge instead, which bounds the KL search). Values exactly at the top edge fall into the
    last bin. The signed minimum and maximum are kept too (for asymmetric ranges).
    """

    #: The histogram grows to at most this many times ``bins`` bins (then neighbours merge).
    MAX_GROWTH = 2

    def __init__(self, bins: int = ENTROPY_BINS) -> None:
        self.bins = bins
        self.counts: np.ndarray | None = None
        self.width = 0.0
        self.zeros = 0  # values seen before the width was known (all zero)
        self.minimum, self.maximum = np.inf, -np.inf

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float32).ravel()
        if not values.size:
            return
        self.minimum = min(self.minimum, float(values.min()))
        self.maximum = max(self.maximum, float(values.max()))
        magnitude = np.abs(values)
        top = float(magnitude.max())
        if self.counts is None:
            if top == 0.0:
                self.zeros += values.size
                return
            self.width = top / self.bins
            self.counts = np.zeros(self.bins, np.int64)
            self.counts[0] += self.zeros
        needed = int(np.ceil(top / self.width))
        if needed > self.MAX_GROWTH * self.bins:
            # Bounded cost: merge neighbouring bins (the width doubles) rather than grow past the cap.
            factor = 1 << int(np.ceil(np.log2(needed / (self.MAX_GROWTH * self.bins))))
            padded = np.concatenate([self.counts, np.zeros(-self.counts.size % factor, np.int64)])
            self.counts = padded.reshape(-1, factor).sum(axis=1)
            self.width *= factor
            needed = int(np.ceil(top / self.width))
        if needed > self.counts.size:
            self.counts = np.concatenate([self.counts, np.zeros(needed - self.counts.size, np.int64)])
        index = np.minimum((magnitude / self.width).astype(np.int64), self.counts.size - 1)
        self.counts += np.bincount(index, minlength=self.counts.size)

    @property
    def edges(self) -> np.ndarray:
        size = 0 if self.counts is None else self.counts.size
        return np.arange(size + 1, dtype=np.float64) * self.width

    def amax(self) -> float:
        """Entropy calibration's threshold (0 for an all-zero tensor)."""
        if self.counts is None:
            return 0.0
        return min(entropy_amax(self.counts, self.edges), max(abs(self.minimum), abs(self.maximum)))


def calibration_tensors(model: onnx.ModelProto, op_types: Sequence[str], outputs: bool = True) -> list[str]:
    """The float activations the quantizer will ask ranges for: inputs (and ``outputs``) of ``op_types``
    nodes that are neither initializers nor weights/biases (what ORT's calibrators select)."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    names: list[str] = []
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        activations = list(node.input[:1]) if node.op_type in WEIGHTED_OPS else list(node.input)
        for name in [*activations, *(node.output if outputs else [])]:
            if name and name not in constants and name not in names:
                names.append(name)
    return names


def entropy_ranges(
    model: onnx.ModelProto,
    tensors: Sequence[str],
    sample_paths: Sequence[Path],
    symmetric: bool = True,
    threads: int | None = None,
) -> dict[str, tuple[float, float]]:
    """Entropy-calibrated (low, high) per tensor: (−amax, amax), or the observed [min, max] clipped to ±amax
    when ``symmetric`` is False. Histograms are collected one window at a time (ONNX Runtime CPU)."""
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {value.name for value in probe.graph.output}
    for name in tensors:
        if name not in outputs:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    if threads is not None:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    histograms = {name: AbsHistogram() for name in tensors}
    reader = WindowReader(sample_paths)
    while (feed := reader.get_next()) is not None:
        for name, value in zip(tensors, session.run(list(tensors), feed)):
            histograms[name].add(value)
    ranges = {}
    for name, histogram in histograms.items():
        amax = histogram.amax()
        if symmetric:
            ranges[name] = (-amax, amax)
        else:
            ranges[name] = (max(histogram.minimum, -amax), min(histogram.maximum, amax))
    return ranges


def _save_ranges(ranges: dict[str, tuple[float, float]], path: str, ort_method: str) -> None:
    """Write ``ranges`` as an ONNX Runtime calibration cache (``quantize_static(calibration_cache_path=...)``)."""
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, save_tensors_data

    data = {
        name: TensorData(lowest=np.array(low, np.float32), highest=np.array(high, np.float32))
        for name, (low, high) in ranges.items()
    }
    save_tensors_data(TensorsData(getattr(CalibrationMethod, ort_method), data), path)


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
