"""INT8 with margin: per-layer sensitivity and mixed INT8/FP16 graphs (``svbr calibrate --sensitivity``,
``--keep-fp16``).

Sensitivity of a layer is the mean SSIM lost when that convolution alone is
quantized (its activation and weight QDQ pairs, with the scales of the full INT8
calibration) and every other layer computes in float32. Every Conv and
ConvTranspose of the graph is measured (all of them are quantized in the
TensorRT-pattern INT8 graph).

A mixed graph keeps chosen layers out of INT8: they read their activation and
weight without QDQ pairs and compute in float16, as a strongly typed TensorRT
network executes what the graph types say: a ``Cast`` to float16 before the layer
(one per source tensor, shared by the layers that read it), float16 weight and
bias, and a ``Cast`` back to float32 after it, or after the ReLU that is its only
reader (kept in float16 with it, so TensorRT can still fuse Conv + ReLU). Every
other layer keeps its QDQ pairs exactly as calibrated; everything else stays
float32 as in the INT8 graph. The layers kept in float16 are listed in the
``svbr.precision_fp16_layers`` metadata (a JSON list of node names), which the
INT8 graph check reads: those layers must compute in float16, every other one
must be quantized.

Scores are measured on ONNX Runtime's CPU provider against the FP32 ONNX model
(which matches PyTorch at SSIM 1.00000, see ``svbr validate``), on the first
windows of the calibration set: the layers are chosen on calibration data, and
``svbr validate`` then scores the result on validation images neither step saw.
For speed, the evaluated graphs have their weight Q→DQ pairs folded into
fake-quantized float32 constants (the same numbers ONNX Runtime computes from
the pairs on every run); activation pairs stay.

Cost on TensorRT (an estimate; nothing here ran on a GPU): Tensor Cores do
twice as many INT8 as FP16 operations per second (dense: Turing through
Hopper and Orin), so a compute-bound layer in float16 takes about twice its
INT8 time. With the float16 layers holding a share ``s`` of the convolution
FLOPs, the convolutions take about ``(1 − s) + 2s = 1 + s`` times their all-INT8
time, and ``(1 + s) / 2`` of their all-FP16 time. Memory-bound layers gain less
from INT8 than that, so the real cost is at most this; the Casts add a little.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from tqdm import tqdm

from calibration.dataset import read_window_sample
from calibration.graph import FP16_LAYERS_KEY, WEIGHTED_OPS, conv_costs, metadata_of  # noqa: F401 (FP16_LAYERS_KEY re-exported)
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, OUTPUT_NAME
from runtime.metrics import ssim

#: Default ``--target-ssim`` of ``--keep-fp16 auto``: mean SSIM against the FP32 model.
DEFAULT_TARGET_SSIM = 0.99

#: Default number of calibration windows the sensitivity and the search are measured on.
DEFAULT_EVAL_SAMPLES = 8

#: INT8 over FP16 Tensor Core throughput (dense) used by the cost estimate.
INT8_SPEEDUP_OVER_FP16 = 2.0


def weighted_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv and ConvTranspose nodes, in graph order."""
    return [node.name for node in model.graph.node if node.op_type in WEIGHTED_OPS]


def fp16_layers_of(model: onnx.ModelProto) -> list[str]:
    """The layers a mixed graph's metadata says compute in float16 ([] for a plain INT8 graph)."""
    return list(json.loads(metadata_of(model).get(FP16_LAYERS_KEY, "[]")))


# --- FLOPs ------------------------------------------------------------------------------------------


def layer_flops(model: onnx.ModelProto, height: int, width: int) -> dict[str, int]:
    """FLOPs (2 × multiply-accumulates, biases ignored) of each Conv/ConvTranspose for one
    1×3×``height``×``width`` input of a float graph (:func:`calibration.graph.conv_costs`)."""
    return {cost.name: cost.flops for cost in conv_costs(model, height, width)}


def tensorrt_cost_estimate(flops: dict[str, int], fp16_layers: Iterable[str]) -> dict:
    """The FLOP share of ``fp16_layers`` and what it should cost on TensorRT (see the module notes)."""
    total = sum(flops.values())
    share = sum(flops[name] for name in fp16_layers) / total if total else 0.0
    factor = (1 - share) + INT8_SPEEDUP_OVER_FP16 * share
    return {
        "fp16_layers": len(list(fp16_layers)),
        "conv_gflops": round(total / 1e9, 3),
        "fp16_flop_share": share,
        "conv_time_vs_all_int8": factor,
        "conv_time_vs_all_fp16": factor / INT8_SPEEDUP_OVER_FP16,
        "assumption": f"estimate: compute-bound convolutions, INT8 Tensor Cores {INT8_SPEEDUP_OVER_FP16:g}x FP16; "
        "conv time vs all-INT8 = (1 - s) + 2 s = 1 + s for FLOP share s in float16",
    }


# --- graph surgery -------------------------------------------------------------------------------


def _quantize_to_float(weight: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """QuantizeLinear → DequantizeLinear of a constant, as ONNX defines them (round half to even, saturate)."""
    shape = [1] * weight.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    scale = scale.reshape(shape).astype(np.float32)
    zero = np.zeros(shape, np.float32) if zero_point is None else zero_point.reshape(shape).astype(np.float32)
    info = np.iinfo(zero_point.dtype if zero_point is not None else np.int8)
    quantized = np.clip(np.rint(weight / scale) + zero, info.min, info.max)
    return ((quantized - zero) * scale).astype(np.float32)


def _dequantized_constant(dq: onnx.NodeProto, constants: dict[str, np.ndarray]) -> np.ndarray:
    """The float value a DequantizeLinear of a constant int8 tensor produces."""
    raw = constants[dq.input[0]].astype(np.float32)
    scale = constants[dq.input[1]].astype(np.float32)
    zero = constants[dq.input[2]].astype(np.float32) if len(dq.input) > 2 and dq.input[2] else np.zeros(1, np.float32)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    shape = [1] * raw.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    zero_shape = shape if zero.size > 1 else [1] * raw.ndim
    return ((raw - zero.reshape(zero_shape)) * scale.reshape(shape)).astype(np.float32)


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads (repeatedly), then initializers nobody reads (in place)."""
    outputs = {value.name for value in graph.output}
    while True:
        read = {name for node in graph.node for name in node.input} | outputs
        keep = [node for node in graph.node if any(out in read for out in node.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    read = {name for node in graph.node for name in node.input}
    initializers = [init for init in graph.initializer if init.name in read]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def restrict_quantization(
    int8_model: onnx.ModelProto, fp16: Iterable[str] = (), quantized: Iterable[str] | None = None
) -> onnx.ModelProto:
    """A copy of a TensorRT-pattern INT8 graph in which only some layers stay quantized.

    Args:
        int8_model: the graph of ``quantize_int8`` (every Conv/ConvTranspose behind QDQ pairs).
        fp16: layers (node names) that lose their QDQ pairs and compute in float16.
        quantized: layers that keep their QDQ pairs; ``None``: every layer not in ``fp16``. Layers in
            neither set lose their QDQ pairs and compute in float32.

    Returns:
        The new model (QDQ pairs nobody reads any more removed); the metadata lists ``fp16``
        under ``FP16_LAYERS_KEY`` when it is not empty.
    """
    names = weighted_layers(int8_model)
    requested = set(fp16)
    unknown = (requested | set(quantized or ())) - set(names)
    fp16 = [name for name in names if name in requested]
    if unknown:
        raise ValueError(f"not Conv/ConvTranspose nodes of this graph: {sorted(unknown)[:5]}")
    quantized = set(names) - set(fp16) if quantized is None else set(quantized) - set(fp16)
    model = onnx.ModelProto()
    model.CopyFrom(int8_model)
    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    new_initializers: list[onnx.TensorProto] = []
    before: dict[str, list[onnx.NodeProto]] = {}  # first output of a node -> nodes to insert before it
    after: dict[str, list[onnx.NodeProto]] = {}  # ... and after it
    input_casts: dict[str, str] = {}  # float32 tensor -> its float16 copy read by float16 layers
    half_of: dict[str, str] = {}  # float32 result of a float16 layer -> the float16 tensor it is cast from

    def float_source(tensor: str, what: str) -> str:
        """The float tensor behind a QuantizeLinear → DequantizeLinear pair feeding ``tensor``."""
        dq = producer.get(tensor)
        if dq is None or dq.op_type != "DequantizeLinear":
            raise ValueError(f"{what} is not read through DequantizeLinear: is this an INT8 (TensorRT) graph?")
        q = producer.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
        if dq.input[0] in constants:  # a pre-quantized int8 weight: its float value becomes a constant
            name = dq.output[0] + "_float"
            if name not in constants:
                constants[name] = _dequantized_constant(dq, constants)
                new_initializers.append(numpy_helper.from_array(constants[name], name))
            return name
        raise ValueError(f"{what}: DequantizeLinear is fed by neither QuantizeLinear nor a constant")

    def half_constant(name: str) -> str:
        half = name + "/float16"
        if half not in constants:
            constants[half] = constants[name].astype(np.float16)
            new_initializers.append(numpy_helper.from_array(constants[half], half))
        return half

    for node in list(graph.node):
        if node.op_type not in WEIGHTED_OPS or node.name in quantized:
            continue
        activation = float_source(node.input[0], f"{node.name} input")
        weight = float_source(node.input[1], f"{node.name} weight")
        if weight not in constants:
            raise ValueError(f"{node.name}: its float weight {weight} is not a constant")
        node.input[0], node.input[1] = activation, weight
        if node.name not in fp16:
            continue
        if activation in half_of:  # another float16 layer's result: read its float16 tensor (no Cast pair)
            input_casts[activation] = half_of[activation]
        input_cast = None
        if activation not in input_casts:
            input_casts[activation] = activation + "/float16"
            input_cast = onnx.helper.make_node(
                "Cast",
                [activation],
                [input_casts[activation]],
                to=onnx.TensorProto.FLOAT16,
                name=f"{activation}/cast_to_float16",
            )
        node.input[0] = input_casts[activation]
        node.input[1] = half_constant(weight)
        if len(node.input) > 2 and node.input[2]:
            node.input[2] = half_constant(node.input[2])
        last = node
        out_readers = readers.get(node.output[0], [])
        if (
            len(out_readers) == 1
            and out_readers[0].op_type == "Relu"
            and node.output[0] not in {v.name for v in graph.output}
        ):
            last = out_readers[0]  # Conv + ReLU stay together in float16 (TensorRT fuses them)
        result = last.output[0]
        last.output[0] = result + "/float16"
        half_of[result] = last.output[0]
        if last is not node:
            node.output[0] = node.output[0] + "/float16"
            last.input[0] = node.output[0]
        after.setdefault(last.output[0], []).append(
            onnx.helper.make_node(
                "Cast", [last.output[0]], [result], to=onnx.TensorProto.FLOAT, name=f"{result}/cast_to_float32"
            )
        )
        if input_cast is not None:
            before.setdefault(node.output[0], []).append(input_cast)  # (outputs are final by now)

    # An activation pair stays only while a quantized layer reads it: the quantizer also gave the other
    # readers of a quantized tensor (Add, Concat, AveragePool) its dequantized copy, and they get the
    # float tensor back once no quantized layer shares it.
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in producer:
            continue
        q = producer[node.input[0]]
        if q.op_type != "QuantizeLinear" or q.input[0] in constants:
            continue
        tensor_readers = [r for r in graph.node if node.output[0] in r.input]
        if any(r.op_type in WEIGHTED_OPS for r in tensor_readers):
            continue
        for reader in tensor_readers:
            for index, name in enumerate(reader.input):
                if name == node.output[0]:
                    reader.input[index] = q.input[0]

    ordered: list[onnx.NodeProto] = []
    for node in graph.node:
        ordered.extend(before.get(node.output[0], []))
        ordered.append(node)
        ordered.extend(after.get(node.output[0], []))
    del graph.node[:]
    graph.node.extend(ordered)
    graph.initializer.extend(new_initializers)
    _prune(graph)
    metadata = {k: v for k, v in metadata_of(int8_model).items() if k != FP16_LAYERS_KEY}
    if fp16:
        metadata[FP16_LAYERS_KEY] = json.dumps(fp16)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    return model


def fold_weight_qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy in which every QuantizeLinear → DequantizeLinear of a constant is replaced by its result.

    The numbers are the ones ONNX Runtime computes from the pair on every run (per-channel axis,
    round half to even, saturation); evaluation then costs little more than the float graph.
    """
    folded = onnx.ModelProto()
    folded.CopyFrom(model)
    graph = folded.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    replace: dict[str, str] = {}
    for node in graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        q = producer.get(node.input[0])
        if q is None or q.op_type != "QuantizeLinear" or q.input[0] not in constants:
            continue
        zero = constants.get(q.input[2]) if len(q.input) > 2 and q.input[2] else None
        axis = next((a.i for a in q.attribute if a.name == "axis"), 1)
        value = _quantize_to_float(constants[q.input[0]], constants[q.input[1]], zero, axis)
        name = node.output[0] + "_folded"
        graph.initializer.append(numpy_helper.from_array(value, name))
        replace[node.output[0]] = name
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name in replace:
                node.input[index] = replace[name]
    _prune(graph)
    return folded


# --- measurement -----------------------------------------------------------------------------------


def _session(model: onnx.ModelProto, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _as_image(output: np.ndarray) -> np.ndarray:
    return np.asarray(output[0], dtype=np.float64).transpose(1, 2, 0)


class SsimEvaluator:
    """Mean SSIM of candidate graphs against a reference graph on fixed inputs (ONNX Runtime CPU).

    Args:
        reference: the FP32 graph (float I/O).
        sample_paths: cached windows (:mod:`calibration.dataset`).
        threads: ONNX Runtime intra-op threads (``None``: its default).
    """

    def __init__(self, reference: onnx.ModelProto, sample_paths: Sequence[Path], threads: int | None = None) -> None:
        if not sample_paths:
            raise ValueError("no samples to evaluate on")
        self.threads = threads
        self.inputs = [read_window_sample(path).network_inputs() for path in sample_paths]
        self.reference = [_as_image(out) for out in self._run(reference)]

    def _run(self, model: onnx.ModelProto) -> list[np.ndarray]:
        session = _session(model, self.threads)
        return [
            session.run([OUTPUT_NAME], {INPUT_IMAGE_NAME: image, INPUT_MAP_NAME: blur_map})[0]
            for image, blur_map in self.inputs
        ]

    def scores(self, model: onnx.ModelProto) -> list[float]:
        """Per-sample SSIM of ``model``'s outputs against the reference's."""
        return [ssim(ref, _as_image(out)) for ref, out in zip(self.reference, self._run(model))]

    def mean_ssim(self, model: onnx.ModelProto) -> float:
        return float(np.mean(self.scores(model)))


@dataclass(frozen=True)
class LayerSensitivity:
    """One row of the sensitivity report.

    Attributes:
        layer: node name; op_type: Conv or ConvTranspose.
        ssim: mean SSIM against the FP32 model with this layer alone quantized.
        ssim_lost: 1 − ssim.
        flops: FLOPs at the measured window size; flop_share: of all convolutions.
    """

    layer: str
    op_type: str
    ssim: float
    ssim_lost: float
    flops: int
    flop_share: float


def sensitivity(
    int8_model: onnx.ModelProto, evaluator: SsimEvaluator, flops: dict[str, int], progress: bool = True
) -> list[LayerSensitivity]:
    """Quantize each layer alone and measure; rows sorted by SSIM lost, largest first."""
    op_types = {node.name: node.op_type for node in int8_model.graph.node}
    total = sum(flops.values()) or 1
    rows = []
    for name in tqdm(weighted_layers(int8_model), desc="sensitivity", unit="layer", disable=not progress):
        value = evaluator.mean_ssim(fold_weight_qdq(restrict_quantization(int8_model, quantized=[name])))
        rows.append(
            LayerSensitivity(name, op_types[name], value, 1.0 - value, flops.get(name, 0), flops.get(name, 0) / total)
        )
    return sorted(rows, key=lambda row: row.ssim_lost, reverse=True)


def mixed_score(int8_model: onnx.ModelProto, fp16: Sequence[str], evaluator: SsimEvaluator) -> float:
    """Mean SSIM of the mixed graph keeping ``fp16`` in float16."""
    return evaluator.mean_ssim(fold_weight_qdq(restrict_quantization(int8_model, fp16=fp16)))


def choose_fp16_layers(
    int8_model: onnx.ModelProto, ranking: Sequence[str], evaluator: SsimEvaluator, target: float, progress: bool = True
) -> tuple[list[str], list[dict]]:
    """The fewest of the most sensitive layers (``ranking``, most sensitive first) to keep in float16
    for the mixed graph to reach mean SSIM ``target``.

    The ranking is greedy (single-layer sensitivity); the count is searched by doubling and then
    bisection, assuming more float16 layers never score lower (each step is measured, not assumed).

    Returns:
        (the layers, every measurement as ``{"fp16_layers": k, "ssim": value}`` in the order made).

    Raises:
        ValueError: even the whole ranking in float16 misses the target.
    """
    history: list[dict] = []
    bar = tqdm(desc="mixed precision", unit="graph", disable=not progress)

    def score(count: int) -> float:
        value = mixed_score(int8_model, list(ranking[:count]), evaluator)
        history.append({"fp16_layers": count, "ssim": value})
        bar.update(1)
        bar.set_postfix(fp16=count, ssim=f"{value:.5f}")
        return value

    try:
        if score(0) >= target:
            return [], history
        failing, passing, count = 0, None, 1
        while passing is None:
            count = min(count, len(ranking))
            if score(count) >= target:
                passing = count
            elif count == len(ranking):
                raise ValueError(
                    f"mean SSIM {history[-1]['ssim']:.5f} < {target} even with all "
                    f"{len(ranking)} ranked layers in float16"
                )
            else:
                failing, count = count, count * 2
        while passing - failing > 1:
            middle = (passing + failing) // 2
            if score(middle) >= target:
                passing = middle
            else:
                failing = middle
        return list(ranking[:passing]), history
    finally:
        bar.close()


def parse_keep_fp16(value: str | None) -> str | int | list[str] | None:
    """``--keep-fp16``: ``"auto"``, a count, or comma-separated node names."""
    if value is None or value == "":
        return None
    if value == "auto":
        return "auto"
    if value.isdigit():
        return int(value)
    return [entry for entry in value.split(",") if entry]


def format_sensitivity(rows: Sequence[LayerSensitivity], baseline: dict, limit: int | None = None) -> str:
    """The report as a fixed-width table (most sensitive first)."""
    lines = [f"{'#':>3} {'layer':<58} {'op':<13} {'SSIM':>8} {'SSIM lost':>10} {'GFLOP':>7} {'FLOP share':>10}"]
    lines.append("-" * len(lines[0]))
    for index, row in enumerate(rows[:limit] if limit else rows, 1):
        lines.append(
            f"{index:>3} {row.layer[-58:]:<58} {row.op_type:<13} {row.ssim:>8.5f} {row.ssim_lost:>10.5f} "
            f"{row.flops / 1e9:>7.3f} {row.flop_share:>9.2%}"
        )
    lines.append(
        f"nothing quantized: SSIM {baseline['none_quantized']:.5f}; all {len(rows)} layers quantized: "
        f"SSIM {baseline['all_quantized']:.5f} (vs the FP32 model, {baseline['samples']} windows of "
        f"{baseline['window']} px); sum of single-layer losses {sum(r.ssim_lost for r in rows):.5f}"
    )
    return "\n".join(lines)
