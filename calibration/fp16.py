"""FP16 graph: float16 weights and activations, float32 graph inputs and output.

The conversion is onnxconverter-common's ``convert_float_to_float16`` with
``keep_io_types=True``: it turns every float32 initializer and tensor into
float16 and puts one Cast after each graph input and one before the output,
so callers (and TensorRT's strongly typed builder, which takes the types from
the graph) keep feeding float32.

Ops kept in float32: none. Measured with ``svbr validate`` (16 synthetic
validation samples of 256 px, ONNX Runtime CPU, an intermediate training
checkpoint): the fully float16 graph matches PyTorch float32 at mean SSIM
1.00000 and mean PSNR 81.1 dB; keeping the Sigmoid in float32 (the likeliest
suspect: float16 has 11 significant bits, so outputs near 1.0 are rounded to
~5e-4) gave exactly the same numbers, and keeping the output Conv + Sigmoid
gave 80.6 dB, i.e. no measurable help, so nothing is kept. Overflow is no
risk either: the largest activation any convolution reads on the calibration
set is ~146 (float16 reaches 65504) and the largest folded weight ~7.6.
``keep_fp32`` is there to re-measure this on other weights.

The residual head (the default, see ``training.model``) is the exception:
its Add and Clip always stay float32, so the input image reaches the output
at full precision (``image + correction``); only the correction the network
computes is float16. A float16 copy of the image alone would move ~1 in 8 of
the output pixels by one uint8 level.

ONNX Runtime's CPU provider has no float16 kernels for most of these ops: it
runs them by casting to float32 and back around each op. What is measured on
CPU is therefore float16 *storage* of every weight and every intermediate
tensor with float32 arithmetic inside each op. TensorRT also keeps every
tensor in float16 but may pick kernels that accumulate in float16 too, which
adds error the CPU cannot show: ``svbr validate --backend tensorrt`` measures
the engine itself on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: Sequence[str] = ()) -> onnx.ModelProto:
    """A float16 copy of ``model`` with float32 inputs and output.

    Args:
        model: the FP32 graph of ``svbr export``.
        keep_fp32: op types (e.g. ``"Sigmoid"``) or node names to keep in
            float32; Casts are added around them.

    Returns:
        The converted model (``model`` is not modified).
    """
    from onnxconverter_common import float16

    op_types = {node.op_type for node in model.graph.node}
    names = {node.name for node in model.graph.node}
    unknown = [entry for entry in keep_fp32 if entry not in op_types and entry not in names]
    if unknown:
        raise ValueError(
            f"keep_fp32: {unknown} are neither op types nor node names of this graph (op types: {sorted(op_types)})"
        )
    block_ops = [entry for entry in keep_fp32 if entry in op_types]
    block_nodes = [entry for entry in keep_fp32 if entry in names and entry not in op_types]
    block_nodes += residual_head_nodes(model)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    converted = float16.convert_float_to_float16(
        copy,
        keep_io_types=True,
        # The library's default block list (ML and shape ops) must stay: passing a list replaces it.
        op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST) + block_ops,
        node_block_list=block_nodes,
    )
    _restore_float32_outputs(converted)
    return converted


def residual_head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the residual head's Add (reading the graph input ``image``) and the Clip after it; [] for a sigmoid head."""
    from runtime.constants import INPUT_IMAGE_NAME

    add = next((n for n in model.graph.node if n.op_type == "Add" and INPUT_IMAGE_NAME in n.input), None)
    if add is None:
        return []
    clips = [n.name for n in model.graph.node if n.op_type == "Clip" and add.output[0] in n.input]
    return [add.name, *clips]


def _restore_float32_outputs(model: onnx.ModelProto) -> None:
    """Make every graph output float32 again (in place).

    onnxconverter-common 1.16 ignores ``keep_io_types`` for an output whose
    producer is blocked (kept float32): it casts the float32 result to float16
    and declares the output float16. Such a trailing Cast-to-float16 is
    removed (its float32 input becomes the output); any other float16 output
    gets a Cast to float32.
    """
    producer = {output: node for node in model.graph.node for output in node.output}
    for value in model.graph.output:
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        node = producer.get(value.name)
        cast_to = next((a.i for a in node.attribute if a.name == "to"), None) if node is not None else None
        if node is not None and node.op_type == "Cast" and cast_to == onnx.TensorProto.FLOAT16:
            source = producer.get(node.input[0])
            if source is not None:
                source.output[list(source.output).index(node.input[0])] = value.name
                model.graph.node.remove(node)
                tensor_type.elem_type = onnx.TensorProto.FLOAT
                continue
        half_name = value.name + "_float16"
        if node is not None:
            node.output[list(node.output).index(value.name)] = half_name
        model.graph.node.append(
            onnx.helper.make_node(
                "Cast", [half_name], [value.name], to=onnx.TensorProto.FLOAT, name=value.name + "_cast_to_float32"
            )
        )
        tensor_type.elem_type = onnx.TensorProto.FLOAT
