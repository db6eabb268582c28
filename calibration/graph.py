"""What a precision graph must look like, checked without running it (the Polygraphy "check" role).

TensorRT builds these graphs as strongly typed networks (SPEC §6), so the
precision is read from the graph itself, and these checks are the contract:

* every precision: ``onnx.checker`` (full), inputs ``image`` N×3×H×W and
  ``blur_map`` N×1×H×W and output ``sharp`` N×3×H×W, all float32, N/H/W dynamic;
  only the exported operators plus ``Cast`` (FP16) or ``QuantizeLinear`` /
  ``DequantizeLinear`` (INT8);
* FP16: every floating-point initializer is float16, and every Conv /
  ConvTranspose reads float16 weights;
* INT8: every Conv / ConvTranspose reads its activation through a
  QuantizeLinear → DequantizeLinear pair and its weight through a
  (QuantizeLinear →) DequantizeLinear with per-output-channel scales (axis 0 for
  Conv's O×I×kH×kW weight, axis 1 for ConvTranspose's I×O×kH×kW weight), all
  int8 with zero points 0 (symmetric, as TensorRT requires); biases stay float;
* mixed INT8/FP16 (``svbr calibrate --keep-fp16``): the layers listed in the
  ``svbr.precision_fp16_layers`` metadata read no QDQ pair and compute in
  float16 (input from a Cast to float16, float16 weight and bias); every other
  Conv / ConvTranspose is quantized as above;
* INT8 for CPUs (``--target cpu``, recorded in the recipe metadata): the
  pattern ONNX Runtime fuses into QLinearConv instead (:func:`check_int8_cpu_graph`);
* uint8 I/O (``svbr export --io uint8``): the ``io/`` wrapper's I/O and ops,
  then all of the above on the float core inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from export.io_wrap import checked_float_core, io_kind, metadata_of, set_metadata  # noqa: F401 (re-exported)
from export.onnx_export import ALLOWED_OPS
from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, OUTPUT_NAME, PRECISIONS
from runtime.io import file_sha256  # noqa: F401 (re-exported)

#: Operators each precision may add to the exported graph.
EXTRA_OPS: dict[str, frozenset[str]] = {
    "fp32": frozenset(),
    "fp16": frozenset({"Cast"}),
    "int8": frozenset({"QuantizeLinear", "DequantizeLinear", "Cast"}),  # Cast: float16 layers of a mixed graph
}

#: Metadata key of a mixed INT8/FP16 graph: JSON list of the Conv/ConvTranspose nodes computing in float16.
FP16_LAYERS_KEY = "svbr.precision_fp16_layers"

#: The operators that carry weights and are quantized.
WEIGHTED_OPS: tuple[str, ...] = ("Conv", "ConvTranspose")

#: Per-output-channel axis of each weighted operator's weight (ONNX layouts).
WEIGHT_CHANNEL_AXIS: dict[str, int] = {"Conv": 0, "ConvTranspose": 1}


@dataclass(frozen=True)
class LayerCost:
    """One convolution at one frame size."""

    name: str
    op_type: str
    flops: int  # 2 × multiply-accumulates
    activation_elements: int  # input + output
    weight_elements: int


def conv_costs(model: onnx.ModelProto, height: int, width: int) -> list[LayerCost]:
    """The cost of every Conv/ConvTranspose of a float graph for one 1×3×``height``×``width`` frame."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for value in fixed.graph.input:
        for dim, size in zip(value.type.tensor_type.shape.dim, (1, None, height, width)):
            if size is not None:
                dim.Clear()
                dim.dim_value = size
    del fixed.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(fixed, strict_mode=True)
    shapes = {
        value.name: [d.dim_value for d in value.type.tensor_type.shape.dim]
        for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    costs = []
    for node in inferred.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        if node.input[1] not in weights:
            raise ValueError(f"{node.name}: weight {node.input[1]} is not an initializer (pass the FP32 graph)")
        weight = weights[node.input[1]]
        inputs, outputs = shapes[node.input[0]], shapes[node.output[0]]
        # Conv: each output pixel reads the whole weight; ConvTranspose: each input pixel does.
        pixels = outputs if node.op_type == "Conv" else inputs
        costs.append(
            LayerCost(
                node.name,
                node.op_type,
                2 * int(np.prod(pixels[2:])) * int(np.prod(weight)),
                int(np.prod(inputs)) + int(np.prod(outputs)),
                int(np.prod(weight)),
            )
        )
    return costs


def drop_unused_opsets(model: onnx.ModelProto) -> None:
    """Remove opset imports of domains no node uses (the quantizer declares a dozen it never uses)."""
    used = {node.domain for node in model.graph.node} | {"", "ai.onnx"}
    keep = [entry for entry in model.opset_import if entry.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def check_io_contract(model: onnx.ModelProto) -> None:
    """Raise ``ValueError`` unless the I/O are ``image``, ``blur_map`` → ``sharp``, float32, N×C×H×W dynamic."""
    inputs = {value.name: value for value in model.graph.input}
    outputs = {value.name: value for value in model.graph.output}
    if set(inputs) != {INPUT_IMAGE_NAME, INPUT_MAP_NAME} or set(outputs) != {OUTPUT_NAME}:
        raise ValueError(f"graph I/O must be image, blur_map -> sharp, got {sorted(inputs)} -> {sorted(outputs)}")
    for value, channels in ((inputs[INPUT_IMAGE_NAME], 3), (inputs[INPUT_MAP_NAME], 1), (outputs[OUTPUT_NAME], 3)):
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            name = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
            raise ValueError(f"{value.name} must be float32 (the runtime feeds float32), got {name}")
        dims = [d.dim_param or d.dim_value for d in tensor_type.shape.dim]
        if dims != ["N", channels, "H", "W"]:
            raise ValueError(f"{value.name} must be N×{channels}×H×W with dynamic N, H, W, got {dims}")


@dataclass(frozen=True)
class QDQSummary:
    """The INT8 graph's quantization, as found by :func:`check_int8_graph`.

    Attributes:
        weighted_nodes: Conv + ConvTranspose nodes (every one is quantized, but the float16 ones).
        qdq_pairs: QuantizeLinear → DequantizeLinear pairs (activations + weights).
        activation_pairs: pairs on activations (shared by nodes reading one tensor).
        weight_pairs: per-channel weight pairs (one per quantized weighted node).
        fp16_nodes: weighted nodes of a mixed graph that compute in float16 instead.
    """

    weighted_nodes: int
    qdq_pairs: int
    activation_pairs: int
    weight_pairs: int
    fp16_nodes: int = 0


def _initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def check_int8_graph(model: onnx.ModelProto) -> QDQSummary:
    """Raise ``ValueError`` unless every Conv/ConvTranspose is QDQ-quantized as TensorRT needs.

    Returns:
        Counts of what was found.
    """
    producer = {output: node for node in model.graph.node for output in node.output}
    initializers = _initializers(model)
    problems: list[str] = []

    def constant(name: str) -> np.ndarray | None:
        return initializers.get(name)

    def check_pair(
        dq: onnx.NodeProto | None, what: str, per_channel_axis: int | None, channels: int | None
    ) -> onnx.NodeProto | None:
        """Check DequantizeLinear ``dq`` (and its QuantizeLinear when present); return the Q node."""
        if dq is None or dq.op_type != "DequantizeLinear":
            problems.append(f"{what}: not read through DequantizeLinear")
            return None
        source = producer.get(dq.input[0])
        raw = constant(dq.input[0])
        if source is not None and source.op_type == "QuantizeLinear":
            quantize = source
        elif raw is not None and raw.dtype == np.int8:
            quantize = None  # pre-quantized int8 weights: DequantizeLinear alone is the TensorRT pattern
        else:
            problems.append(f"{what}: DequantizeLinear is not fed by QuantizeLinear")
            return None
        for node in (n for n in (quantize, dq) if n is not None):
            scale = constant(node.input[1])
            zero_point = constant(node.input[2]) if len(node.input) > 2 else None
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if scale is None:
                problems.append(f"{what}: {node.op_type} scale is not a constant")
                continue
            if zero_point is None or zero_point.dtype != np.int8 or np.any(zero_point != 0):
                problems.append(f"{what}: {node.op_type} zero point must be int8 0 (symmetric)")
            if per_channel_axis is None:
                if scale.size != 1:
                    problems.append(f"{what}: activation scale must be per tensor, got {scale.size} values")
            elif scale.ndim != 1 or scale.size != channels or axis != per_channel_axis:
                problems.append(
                    f"{what}: weight scale must be per output channel (axis {per_channel_axis}, "
                    f"{channels} values), got axis {axis} with {scale.size} values"
                )
            if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
                problems.append(f"{what}: {node.op_type} scale must be finite and positive")
        return quantize

    weighted = [node for node in model.graph.node if node.op_type in WEIGHTED_OPS]
    fp16_layers = set(json.loads(metadata_of(model).get(FP16_LAYERS_KEY, "[]")))
    missing = fp16_layers - {node.name for node in weighted}
    if missing:
        problems.append(f"{FP16_LAYERS_KEY} names layers the graph does not have: {sorted(missing)[:5]}")
    activation_pairs: set[str] = set()
    weight_pairs = 0
    for node in weighted:
        label = f"{node.op_type} {node.name or node.output[0]}"
        if node.name in fp16_layers:
            problems.extend(_float16_layer_problems(node, label, producer, initializers))
            continue
        if check_pair(producer.get(node.input[0]), f"{label} input", None, None) is not None:
            activation_pairs.add(node.input[0])
        weight_dq = producer.get(node.input[1])
        weight_source = weight_dq.input[0] if weight_dq is not None and weight_dq.input else ""
        weight = constant(weight_source)
        if weight is None and weight_source in producer:  # Q(W) -> DQ: the weight feeds the Q
            weight = constant(producer[weight_source].input[0])
        if weight is None:
            problems.append(f"{label} weight: not a constant behind its QDQ pair")
            continue
        axis = WEIGHT_CHANNEL_AXIS[node.op_type]
        if check_pair(weight_dq, f"{label} weight", axis, weight.shape[axis]) is not None:
            weight_pairs += 1
        if len(node.input) > 2 and node.input[2] and node.input[2] in producer:
            problems.append(f"{label} bias must stay a float constant (TensorRT quantizes no bias)")
    if problems:
        raise ValueError("INT8 graph is not quantized as TensorRT requires:\n  " + "\n  ".join(problems[:20]))
    pairs = sum(
        1
        for node in model.graph.node
        if node.op_type == "DequantizeLinear"
        and producer.get(node.input[0]) is not None
        and producer[node.input[0]].op_type == "QuantizeLinear"
    )
    return QDQSummary(len(weighted), pairs, len(activation_pairs), weight_pairs, len(fp16_layers))


def _float16_layer_problems(
    node: onnx.NodeProto, label: str, producer: dict[str, onnx.NodeProto], initializers: dict[str, np.ndarray]
) -> list[str]:
    """Why a layer a mixed graph keeps in float16 does not compute in float16 without QDQ (empty: it does)."""
    problems = []
    source = producer.get(node.input[0])
    if source is not None and source.op_type == "Relu":  # the float16 Conv + ReLU of another float16 layer
        source = producer.get(source.input[0])
    if source is None:
        problems.append(f"{label} (float16): input is a graph input, not float16")
    elif source.op_type == "Cast":
        if next((a.i for a in source.attribute if a.name == "to"), None) != onnx.TensorProto.FLOAT16:
            problems.append(f"{label} (float16): input is not cast to float16")
    elif source.op_type in WEIGHTED_OPS:
        weight = initializers.get(source.input[1])
        if weight is None or weight.dtype != np.float16:
            problems.append(f"{label} (float16): input comes from a layer that is not float16")
    else:
        problems.append(f"{label} (float16): input is {source.op_type}, neither a Cast to float16 nor a float16 layer")
    for index, what in ((1, "weight"), (2, "bias")):
        if index >= len(node.input) or not node.input[index]:
            continue
        value = initializers.get(node.input[index])
        if value is None or value.dtype != np.float16:
            problems.append(f"{label} (float16): {what} is not a float16 constant (no QDQ pair either)")
    return problems


def check_int8_cpu_graph(model: onnx.ModelProto) -> QDQSummary:
    """Raise ``ValueError`` unless every Conv is in the QDQ pattern ONNX Runtime's CPU provider fuses to QLinearConv.

    That is (``svbr calibrate --precision int8 --target cpu``): activation read
    through uint8 QuantizeLinear → DequantizeLinear (per tensor, any zero point),
    weight an int8 constant behind DequantizeLinear with per-output-channel
    scales and zero points 0, bias an int32 constant behind DequantizeLinear,
    output quantized (the Conv's only reader is a QuantizeLinear to uint8).

    Returns:
        Counts of what was found (``weighted_nodes`` counts Conv only; ConvTranspose stays float).
    """
    producer = {output: node for node in model.graph.node for output in node.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    initializers = _initializers(model)
    problems: list[str] = []
    activation_pairs: set[str] = set()
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    for node in convs:
        label = f"Conv {node.name or node.output[0]}"
        dq = producer.get(node.input[0])
        quantize = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if quantize is None or quantize.op_type != "QuantizeLinear":
            problems.append(f"{label} input: not read through QuantizeLinear → DequantizeLinear")
        elif initializers.get(quantize.input[2], np.zeros(0, np.int8)).dtype != np.uint8:
            problems.append(f"{label} input: activations must be uint8 (asymmetric)")
        else:
            activation_pairs.add(quantize.output[0])
        weight_dq = producer.get(node.input[1])
        weight = initializers.get(weight_dq.input[0]) if weight_dq is not None else None
        if weight_dq is None or weight_dq.op_type != "DequantizeLinear" or weight is None or weight.dtype != np.int8:
            problems.append(f"{label} weight: not an int8 constant behind DequantizeLinear")
        else:
            scale = initializers.get(weight_dq.input[1])
            zero_point = initializers.get(weight_dq.input[2]) if len(weight_dq.input) > 2 else None
            if scale is None or scale.ndim != 1 or scale.size != weight.shape[0]:
                problems.append(f"{label} weight: scales must be per output channel ({weight.shape[0]} values)")
            if zero_point is not None and np.any(zero_point != 0):
                problems.append(f"{label} weight: zero points must be 0 (symmetric)")
        if len(node.input) > 2 and node.input[2]:
            bias_dq = producer.get(node.input[2])
            bias = initializers.get(bias_dq.input[0]) if bias_dq is not None else None
            if bias is None or bias.dtype != np.int32:
                problems.append(f"{label} bias: not an int32 constant behind DequantizeLinear")
        out_readers = readers.get(node.output[0], [])
        if [r.op_type for r in out_readers] != ["QuantizeLinear"]:
            problems.append(
                f"{label} output: must be read by one QuantizeLinear only, got {[r.op_type for r in out_readers]}"
            )
    if problems:
        raise ValueError(
            "CPU INT8 graph is not in ONNX Runtime's QLinearConv pattern:\n  " + "\n  ".join(problems[:20])
        )
    pairs = sum(
        1
        for node in model.graph.node
        if node.op_type == "DequantizeLinear"
        and producer.get(node.input[0]) is not None
        and producer[node.input[0]].op_type == "QuantizeLinear"
    )
    return QDQSummary(len(convs), pairs, len(activation_pairs), len(convs))


def int8_target(model: onnx.ModelProto) -> str:
    """``"cpu"`` or ``"tensorrt"``: the ``target`` of the INT8 recipe in the metadata (default tensorrt)."""
    recipe = json.loads(metadata_of(model).get("svbr.precision_recipe", "{}"))
    return recipe.get("target", "tensorrt")


def check_fp16_graph(model: onnx.ModelProto) -> int:
    """Raise ``ValueError`` unless weights are float16 and every weighted node computes in float16.

    Returns:
        The number of ``Cast`` nodes (the I/O casts plus two per op kept in float32).
    """
    # Ops deliberately kept in float32 (svbr calibrate --keep-fp32) are recorded in the recipe metadata.
    recipe = json.loads(metadata_of(model).get("svbr.precision_recipe", "{}"))
    kept = set(recipe.get("keep_fp32", []))
    weighted = {
        node.input[1]
        for node in model.graph.node
        if node.op_type in WEIGHTED_OPS and node.op_type not in kept and node.name not in kept
    }
    initializer_types = {init.name: init.data_type for init in model.graph.initializer}
    not_half = [name for name in weighted if initializer_types.get(name) != onnx.TensorProto.FLOAT16]
    if not_half:
        raise ValueError(f"FP16 graph: {len(not_half)} Conv/ConvTranspose weights are not float16, e.g. {not_half[0]}")
    return sum(1 for node in model.graph.node if node.op_type == "Cast")


def check_precision_graph(model: onnx.ModelProto, precision: str) -> QDQSummary | int | None:
    """All checks for one precision; raise ``ValueError`` (or the checker's error) on the first failure.

    Returns:
        INT8: a :class:`QDQSummary`; FP16: the number of Cast nodes; FP32: ``None``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {PRECISIONS}")
    if io_kind(model) == "uint8":
        # uint8 I/O (svbr export --io uint8): check the io/ wrapper, then the float core it wraps.
        model = checked_float_core(model)
    onnx.checker.check_model(model, full_check=True)
    check_io_contract(model)
    ops = {node.op_type for node in model.graph.node}
    unexpected = ops - ALLOWED_OPS - EXTRA_OPS[precision]
    if unexpected:
        raise ValueError(f"unexpected operators in the {precision} graph: {sorted(unexpected)}")
    if precision == "int8":
        return check_int8_cpu_graph(model) if int8_target(model) == "cpu" else check_int8_graph(model)
    if precision == "fp16":
        return check_fp16_graph(model)
    return None
