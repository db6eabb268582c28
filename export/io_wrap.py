"""uint8 I/O: the pre- and post-processing of ``Deblurrer`` moved into the ONNX graph.

A float-I/O SVBR-Net graph (any precision: FP32 of ``svbr export``, FP16 or
INT8 of ``svbr calibrate``, all with float32 inputs and output) is wrapped so
that it takes what a camera or OpenCV delivers and returns what is written:

* ``image``: uint8 N×H×W×3 (BGR by default, or RGB; ``svbr.channel_order``);
* ``blur_map``: float32 N×H×W, defocus radius in px;
* ``sharp``: uint8 N×H×W×3 in the same channel order.

The graph does exactly what ``runtime.deblurrer``'s numpy functions do
(``image_to_network``, ``map_to_network``, ``network_to_image``): Cast → /255
→ NHWC→NCHW → channel reversal (BGR); radius / 6 → Clip(0, 1) → N×1×H×W;
Clip(0, 1) → ×255 → Round (half to even, as ``np.rint``) → channel reversal →
NCHW→NHWC → Cast to uint8. The wrapper's nodes and constants are named
``io/...`` and the float core keeps its own tensors under ``CORE_*`` names, so
:func:`strip_uint8_io` recovers the float graph exactly (``svbr calibrate``
quantizes the core and wraps the result again).

onnx only (no torch): the calibration and runtime sides can import it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from runtime.constants import INPUT_IMAGE_NAME, INPUT_MAP_NAME, MAX_RADIUS_PX, OUTPUT_NAME

#: ``svbr export --io`` / ``svbr.io`` metadata values.
IO_KINDS: tuple[str, ...] = ("float32", "uint8")

#: Channel orders a uint8-I/O graph can take (``svbr.channel_order``, upper case in the metadata).
IO_CHANNEL_ORDERS: tuple[str, ...] = ("bgr", "rgb")

#: Prefix of every node and initializer the wrapper adds.
IO_PREFIX = "io/"

#: The float core's own input/output tensors inside a uint8-I/O graph.
CORE_IMAGE = IO_PREFIX + "core_image"
CORE_MAP = IO_PREFIX + "core_blur_map"
CORE_SHARP = IO_PREFIX + "core_sharp"

#: Operators the wrapper adds around the float graph.
IO_OPS = frozenset({"Cast", "Div", "Mul", "Transpose", "Gather", "Clip", "Unsqueeze", "Round"})

#: Float-I/O values of the metadata keys the wrapper changes (restored by :func:`strip_uint8_io`).
_FLOAT_CONTRACT = {
    "svbr.channel_order": "RGB",
    "svbr.input_image_range": "[0, 1]",
    "svbr.image_normalisation": "uint8 / 255",
    "svbr.map_normalisation": f"clip(radius_px / {MAX_RADIUS_PX:g}, 0, 1)",
}


def io_kind(model: onnx.ModelProto) -> str:
    """``"uint8"`` or ``"float32"``: the ``svbr.io`` metadata, else the image input's element type."""
    for entry in model.metadata_props:
        if entry.key == "svbr.io":
            return entry.value
    image = next((v for v in model.graph.input if v.name == INPUT_IMAGE_NAME), None)
    if image is not None and image.type.tensor_type.elem_type == TensorProto.UINT8:
        return "uint8"
    return "float32"


def metadata_of(model: onnx.ModelProto) -> dict[str, str]:
    """The model's metadata_props as a dict."""
    return {entry.key: entry.value for entry in model.metadata_props}


def set_metadata(model: onnx.ModelProto, entries: dict[str, str]) -> None:
    """Replace the model's metadata_props with ``entries`` (in place)."""
    del model.metadata_props[:]
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
        for index, name in enumerate(node.output):
            if name == old:
                node.output[index] = new


def _opset(model: onnx.ModelProto) -> int:
    return next(e.version for e in model.opset_import if e.domain in ("", "ai.onnx"))


def wrap_uint8_io(model: onnx.ModelProto, channel_order: str = "bgr") -> onnx.ModelProto:
    """A copy of a float-I/O SVBR-Net graph with uint8 N×H×W×3 image I/O and a radius map in px.

    Args:
        model: a graph with float32 inputs ``image`` N×3×H×W (RGB, [0, 1]),
            ``blur_map`` N×1×H×W (normalised) and output ``sharp`` N×3×H×W.
        channel_order: ``"bgr"`` (OpenCV's, the default) or ``"rgb"``: the order
            of the uint8 input and output.

    Raises:
        ValueError: already uint8 I/O, unknown channel order, opset < 13.
    """
    if channel_order not in IO_CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {IO_CHANNEL_ORDERS}, got {channel_order!r}")
    if io_kind(model) == "uint8":
        raise ValueError("the model already has uint8 I/O")
    if _opset(model) < 13:
        raise ValueError(f"uint8 I/O needs opset >= 13 (Unsqueeze with an axes input), got {_opset(model)}")
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    _rename(graph, INPUT_IMAGE_NAME, CORE_IMAGE)
    _rename(graph, INPUT_MAP_NAME, CORE_MAP)
    _rename(graph, OUTPUT_NAME, CORE_SHARP)
    bgr = channel_order == "bgr"
    p = IO_PREFIX
    constants = {
        p + "255": np.array(255, np.float32),
        p + "max_radius": np.array(MAX_RADIUS_PX, np.float32),
        p + "zero": np.array(0, np.float32),
        p + "one": np.array(1, np.float32),
        p + "channel_axis": np.array([1], np.int64),
    }
    if bgr:
        constants[p + "reverse"] = np.array([2, 1, 0], np.int64)
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in constants.items())
    node = helper.make_node
    nchw = p + "image_nchw" if bgr else CORE_IMAGE
    prologue = [
        node("Cast", [INPUT_IMAGE_NAME], [p + "image_float"], name=p + "image_cast", to=TensorProto.FLOAT),
        node("Div", [p + "image_float", p + "255"], [p + "image_scaled"], name=p + "image_scale"),
        node("Transpose", [p + "image_scaled"], [nchw], name=p + "image_to_nchw", perm=[0, 3, 1, 2]),
        *([node("Gather", [nchw, p + "reverse"], [CORE_IMAGE], name=p + "image_bgr_to_rgb", axis=1)] if bgr else []),
        node("Div", [INPUT_MAP_NAME, p + "max_radius"], [p + "map_scaled"], name=p + "map_scale"),
        node("Clip", [p + "map_scaled", p + "zero", p + "one"], [p + "map_clipped"], name=p + "map_clip"),
        node("Unsqueeze", [p + "map_clipped", p + "channel_axis"], [CORE_MAP], name=p + "map_to_n1hw"),
    ]
    rounded = p + "sharp_rounded"
    ordered = p + "sharp_bgr" if bgr else rounded
    epilogue = [
        node("Clip", [CORE_SHARP, p + "zero", p + "one"], [p + "sharp_clipped"], name=p + "sharp_clip"),
        node("Mul", [p + "sharp_clipped", p + "255"], [p + "sharp_levels"], name=p + "sharp_scale"),
        node("Round", [p + "sharp_levels"], [rounded], name=p + "sharp_round"),
        *([node("Gather", [rounded, p + "reverse"], [ordered], name=p + "sharp_rgb_to_bgr", axis=1)] if bgr else []),
        node("Transpose", [ordered], [p + "sharp_nhwc"], name=p + "sharp_to_nhwc", perm=[0, 2, 3, 1]),
        node("Cast", [p + "sharp_nhwc"], [OUTPUT_NAME], name=p + "sharp_cast", to=TensorProto.UINT8),
    ]
    nodes = [*prologue, *graph.node, *epilogue]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:], graph.output[:]
    graph.input.extend(
        [
            helper.make_tensor_value_info(INPUT_IMAGE_NAME, TensorProto.UINT8, ["N", "H", "W", 3]),
            helper.make_tensor_value_info(INPUT_MAP_NAME, TensorProto.FLOAT, ["N", "H", "W"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.UINT8, ["N", "H", "W", 3]))
    order = channel_order.upper()
    set_metadata(
        wrapped,
        {
            **metadata_of(model),
            "svbr.io": "uint8",
            "svbr.channel_order": order,
            "svbr.input_image_range": f"uint8 [0, 255], N×H×W×3 {order}",
            "svbr.image_normalisation": "in graph: uint8 / 255",
            "svbr.map_normalisation": f"in graph: clip(radius_px / {MAX_RADIUS_PX:g}, 0, 1), map N×H×W in px",
            "svbr.output": f"uint8 N×H×W×3 {order}: in graph clip(x, 0, 1) × 255, round half to even",
        },
    )
    return wrapped


def strip_uint8_io(model: onnx.ModelProto) -> onnx.ModelProto:
    """The float-I/O core of a uint8-I/O graph (the inverse of :func:`wrap_uint8_io`).

    Raises:
        ValueError: the model is not a uint8-I/O graph made by :func:`wrap_uint8_io`.
    """
    if io_kind(model) != "uint8":
        raise ValueError("the model has float I/O already")
    core = onnx.ModelProto()
    core.CopyFrom(model)
    graph = core.graph
    tensors = {name for n in graph.node for name in (*n.input, *n.output)}
    if not {CORE_IMAGE, CORE_MAP, CORE_SHARP} <= tensors:
        raise ValueError("not a uint8-I/O graph of wrap_uint8_io: its io/core_* tensors are missing")
    keep = [n for n in graph.node if not n.name.startswith(IO_PREFIX)]
    del graph.node[:]
    graph.node.extend(keep)
    initializers = [i for i in graph.initializer if not i.name.startswith(IO_PREFIX)]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    _rename(graph, CORE_IMAGE, INPUT_IMAGE_NAME)
    _rename(graph, CORE_MAP, INPUT_MAP_NAME)
    _rename(graph, CORE_SHARP, OUTPUT_NAME)
    del graph.input[:], graph.output[:]
    graph.input.extend(
        [
            helper.make_tensor_value_info(INPUT_IMAGE_NAME, TensorProto.FLOAT, ["N", 3, "H", "W"]),
            helper.make_tensor_value_info(INPUT_MAP_NAME, TensorProto.FLOAT, ["N", 1, "H", "W"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 3, "H", "W"]))
    metadata = {k: v for k, v in metadata_of(model).items() if k not in ("svbr.io", "svbr.output")}
    set_metadata(core, {**metadata, **_FLOAT_CONTRACT})
    return core


def check_uint8_io_contract(model: onnx.ModelProto) -> None:
    """Raise ``ValueError`` unless I/O are uint8 N×H×W×3 ``image``, float32 N×H×W ``blur_map`` → uint8 ``sharp``."""
    inputs = {value.name: value for value in model.graph.input}
    outputs = {value.name: value for value in model.graph.output}
    if set(inputs) != {INPUT_IMAGE_NAME, INPUT_MAP_NAME} or set(outputs) != {OUTPUT_NAME}:
        raise ValueError(f"graph I/O must be image, blur_map -> sharp, got {sorted(inputs)} -> {sorted(outputs)}")
    expected = (
        (inputs[INPUT_IMAGE_NAME], TensorProto.UINT8, ["N", "H", "W", 3]),
        (inputs[INPUT_MAP_NAME], TensorProto.FLOAT, ["N", "H", "W"]),
        (outputs[OUTPUT_NAME], TensorProto.UINT8, ["N", "H", "W", 3]),
    )
    for value, elem_type, dims in expected:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != elem_type:
            raise ValueError(
                f"{value.name} must be {TensorProto.DataType.Name(elem_type)}, got "
                f"{TensorProto.DataType.Name(tensor_type.elem_type)}"
            )
        found = [d.dim_param or d.dim_value for d in tensor_type.shape.dim]
        if found != dims:
            raise ValueError(f"{value.name} must be {'×'.join(map(str, dims))} with dynamic N, H, W, got {found}")
    order = metadata_of(model).get("svbr.channel_order", "").lower()
    if order not in IO_CHANNEL_ORDERS:
        raise ValueError(f"uint8-I/O graph needs svbr.channel_order BGR or RGB, got {order!r}")


def checked_float_core(model: onnx.ModelProto) -> onnx.ModelProto:
    """Check a uint8-I/O graph (checker, I/O contract, wrapper operators) and return its float core.

    Raises:
        ValueError: a broken contract or an operator the wrapper may not contain.
        onnx.checker.ValidationError: the checker's complaint.
    """
    onnx.checker.check_model(model, full_check=True)
    check_uint8_io_contract(model)
    wrapper_ops = {node.op_type for node in model.graph.node if node.name.startswith(IO_PREFIX)}
    if wrapper_ops - IO_OPS:
        raise ValueError(f"unexpected operators in the uint8 I/O wrapper: {sorted(wrapper_ops - IO_OPS)}")
    return strip_uint8_io(model)
