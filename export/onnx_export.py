"""``svbr export``: a PyTorch checkpoint -> an FP32 ONNX model the runtime loads.

The graph: inputs ``image`` (N×3×H×W) and ``blur_map`` (N×1×H×W), output
``sharp`` (N×3×H×W), N, H and W dynamic (H, W multiples of 4); BatchNorm folded
into the preceding convolutions before export, so the only operators are Conv,
Relu, Add, AveragePool, ConvTranspose, Concat and the head's Add + Clip (the
default residual head) or Sigmoid (the paper's) — TensorRT- and
quantisation-friendly. The model's ``svbr.*`` metadata carries the I/O
contract (normalisation, receptive field, version) and the source checkpoint.

``--io uint8`` wraps that graph (:mod:`export.io_wrap`): uint8 N×H×W×3 windows
and radii in px in, uint8 N×H×W×3 out, the normalisation in ``io/`` nodes;
``check_graph`` checks the wrapper and then the float core inside it.

Regenerate the bundled model after the weights change: ``svbr export --bundled``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from export.io_wrap import IO_KINDS, checked_float_core, io_kind, set_metadata, wrap_uint8_io
from runtime.arguments import add_model, add_output
from runtime.backends import create_backend
from runtime.backends.compare import Comparison, compare_runners
from runtime.constants import (
    HALO_PX,
    INPUT_IMAGE_NAME,
    INPUT_MAP_NAME,
    MAX_RADIUS_PX,
    MODEL_VERSION,
    OUTPUT_NAME,
    RECEPTIVE_FIELD_PX,
    SIZE_MULTIPLE,
)

#: TensorRT 10 and ONNX Runtime both support it; Conv/ConvTranspose/pooling are unchanged since.
DEFAULT_OPSET = 17

#: The only operators an exported SVBR-Net may contain (SPEC §2, BatchNorm folded).
#: The residual head (the default) ends in Add + Clip, the paper's in Sigmoid.
ALLOWED_OPS = frozenset({"Conv", "Relu", "Add", "AveragePool", "ConvTranspose", "Concat", "Sigmoid", "Clip"})

#: torch.onnx's two exporters; both give the same operators and outputs here.
#: "torchscript" (the tracer, default): exports opset 17 natively, keeps readable
#: node names (/image_branch/x19/...), takes seconds; deprecated upstream but
#: present in the pinned torch. "dynamo" (torch.export): upstream's future
#: default; it builds opset 18 and converts down, and takes ~4x longer.
EXPORTERS = ("torchscript", "dynamo")
DEFAULT_EXPORTER = "torchscript"

#: (N, H, W) shapes at which ``svbr export`` checks ONNX Runtime against PyTorch.
PARITY_SHAPES: list[tuple[int, int, int]] = [(1, 64, 64), (2, 36, 44), (1, 52, 76)]

#: Largest acceptable ONNX Runtime vs PyTorch difference (float32, outputs in [0, 1]).
PARITY_TOLERANCE = 1e-4

#: Largest acceptable difference (uint8 levels) between a uint8-I/O graph and its float graph rounded:
#: the same float arithmetic, but ORT may fuse the graphs differently, which can move a value
#: that sits on a rounding boundary by one level.
UINT8_PARITY_LEVELS = 1


# --- graph preparation ----------------------------------------------------------


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every Conv2d → BatchNorm2d pair fused into one Conv2d.

    In SVBR-Net every BatchNorm directly follows a convolution inside an
    ``nn.Sequential`` (blocks T1 and T3's shortcut), which is where pairs are found.
    Folding in PyTorch, not in the exporter, makes the result independent of
    which exporter runs and of its optimisation passes.

    Raises:
        ValueError: a BatchNorm that does not follow a convolution.
    """
    folded = copy.deepcopy(model).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for previous, current in zip(names, names[1:]):
            conv, norm = module._modules[previous], module._modules[current]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                module._modules[previous] = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, norm)
                module._modules[current] = nn.Identity()
    remaining = [name for name, m in folded.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if remaining:
        raise ValueError(f"BatchNorm layers not preceded by a convolution: {remaining}")
    return folded


def contract_metadata() -> dict[str, str]:
    """The I/O contract of SPEC §1 as ``svbr.*`` ONNX metadata."""
    return {
        "svbr.model_version": MODEL_VERSION,
        "svbr.precision": "fp32",
        "svbr.channel_order": "RGB",
        "svbr.input_image_range": "[0, 1]",
        "svbr.image_normalisation": "uint8 / 255",
        "svbr.max_radius_px": f"{MAX_RADIUS_PX:g}",
        "svbr.map_normalisation": f"clip(radius_px / {MAX_RADIUS_PX:g}, 0, 1)",
        "svbr.size_multiple": str(SIZE_MULTIPLE),
        "svbr.receptive_field_px": str(RECEPTIVE_FIELD_PX),
        "svbr.halo_px": str(HALO_PX),
    }


def checkpoint_metadata(path: Path, training_metadata: dict) -> dict[str, str]:
    """Provenance metadata: which checkpoint (name, SHA-256) and its training metadata."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "svbr.source_checkpoint": path.name,
        "svbr.source_checkpoint_sha256": digest,
        "svbr.training_metadata": json.dumps(training_metadata, sort_keys=True),
    }


def _rename_dynamic_dims(model: onnx.ModelProto) -> None:
    """Name the I/O dims N, H, W and drop intermediate shape annotations.

    The dynamo exporter names dims after its symbols (``4*h4``, ``s18``), which
    differ between inputs and intermediates; value_info is optional (runtimes
    infer shapes), so dropping it is simpler than translating every symbol.
    """
    del model.graph.value_info[:]
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "N"), (2, "H"), (3, "W")):
            dims[index].ClearField("dim_value")
            dims[index].dim_param = name


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Raise the given loggers to ERROR for the duration of the block."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _export_graph(model: nn.Module, exporter: str, opset: int) -> onnx.ModelProto:
    """Trace ``model`` (BatchNorm already folded) into an ONNX model with dynamic N, H, W."""
    # Batch 2 and 64×64: sizes torch.export does not specialise (it does for 0 and 1).
    example = (torch.rand(2, 3, 64, 64), torch.rand(2, 1, 64, 64))
    names = {"input_names": [INPUT_IMAGE_NAME, INPUT_MAP_NAME], "output_names": [OUTPUT_NAME]}
    with warnings.catch_warnings(), _quiet_loggers("torch.onnx", "onnxscript"):
        # Tracer notes about the Python shape checks in SVBRNet.forward (they
        # are constants at export), the exporters' deprecation chatter, and the
        # dynamo exporter's note that it converts its opset-18 graph down to 17.
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            from torch.export import Dim

            batch = Dim("N", min=1, max=4096)
            # H = 4·h, W = 4·w: tells torch.export that sizes are multiples of 4.
            height, width = Dim("h", min=1, max=8192), Dim("w", min=1, max=8192)
            shapes = {0: batch, 2: SIZE_MULTIPLE * height, 3: SIZE_MULTIPLE * width}
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                opset_version=opset,
                verbose=False,
                dynamic_shapes={"image": shapes, "blur_map": shapes},
                **names,
            )
            proto = program.model_proto
        elif exporter == "torchscript":
            import io

            buffer = io.BytesIO()
            axes = {0: "N", 2: "H", 3: "W"}
            torch.onnx.export(
                model,
                example,
                buffer,
                dynamo=False,
                opset_version=opset,
                do_constant_folding=True,
                dynamic_axes={INPUT_IMAGE_NAME: axes, INPUT_MAP_NAME: axes, OUTPUT_NAME: axes},
                **names,
            )
            proto = onnx.load_from_string(buffer.getvalue())
        else:
            raise ValueError(f"unknown exporter {exporter!r}; choose from {EXPORTERS}")
    _rename_dynamic_dims(proto)
    _constants_to_initializers(proto)
    return proto


def _constants_to_initializers(model: onnx.ModelProto) -> None:
    """Move Constant nodes (the tracer emits the head's Clip bounds as such) into initializers.

    The graph then holds only the operators of ``ALLOWED_OPS``; every runtime
    treats an initializer and a Constant alike.
    """
    constants = [node for node in model.graph.node if node.op_type == "Constant"]
    for node in constants:
        attribute = next((a for a in node.attribute if a.name == "value"), None)
        if attribute is None:
            raise ValueError(f"Constant node {node.name} has no tensor 'value' attribute")
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attribute.t)
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
        model.graph.node.remove(node)


def check_graph(model: onnx.ModelProto, opset: int | None = None) -> None:
    """Raise unless the graph follows the export contract and is ``onnx.checker``-clean.

    Raises:
        ValueError: wrong opset, operators, I/O names or shapes.
        onnx.checker.ValidationError: the checker's complaint.

    Args:
        model: the exported model.
        opset: the opset the default ONNX domain must have (``None``: any).
    """
    if io_kind(model) == "uint8":
        # uint8 I/O (``--io uint8``): the io/ wrapper around an unchanged float core, checked as such.
        check_graph(checked_float_core(model), opset)
        return
    versions = {entry.domain: entry.version for entry in model.opset_import}
    if opset is not None and versions.get("", versions.get("ai.onnx")) != opset:
        raise ValueError(f"exported opset {versions} differs from the requested {opset}")
    ops = {node.op_type for node in model.graph.node}
    if ops - ALLOWED_OPS:
        raise ValueError(f"unexpected operators in the exported graph: {sorted(ops - ALLOWED_OPS)}")
    onnx.checker.check_model(model, full_check=True)
    inputs = {value.name: value for value in model.graph.input}
    outputs = {value.name: value for value in model.graph.output}
    if set(inputs) != {INPUT_IMAGE_NAME, INPUT_MAP_NAME} or set(outputs) != {OUTPUT_NAME}:
        raise ValueError(f"graph I/O must be image, blur_map -> sharp, got {sorted(inputs)} -> {sorted(outputs)}")
    for value, channels in ((inputs[INPUT_IMAGE_NAME], 3), (inputs[INPUT_MAP_NAME], 1), (outputs[OUTPUT_NAME], 3)):
        dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
        if dims != ["N", channels, "H", "W"]:
            raise ValueError(f"{value.name} must be N×{channels}×H×W with dynamic N, H, W, got {dims}")


def export_onnx(
    model: nn.Module,
    out_path: str | os.PathLike[str],
    *,
    opset: int = DEFAULT_OPSET,
    exporter: str = DEFAULT_EXPORTER,
    metadata: dict[str, str] | None = None,
    io: str = "float32",
    channel_order: str = "bgr",
) -> Path:
    """Fold BatchNorm, export, check and save an SVBR-Net as ONNX.

    Args:
        model: an ``SVBRNet`` (its weights are not modified).
        out_path: the ``.onnx`` file to write (parent folders are created).
        opset: ONNX opset version.
        exporter: one of ``EXPORTERS`` (default ``"torchscript"``).
        metadata: extra ``svbr.*`` entries (e.g. :func:`checkpoint_metadata`),
            added to :func:`contract_metadata`.
        io: ``"float32"`` (N×3×H×W float I/O) or ``"uint8"`` (:func:`export.io_wrap.wrap_uint8_io`:
            uint8 N×H×W×3 windows and a radius map in px in, uint8 out).
        channel_order: for ``io="uint8"``: ``"bgr"`` or ``"rgb"`` uint8 I/O.

    Returns:
        ``out_path`` as a ``Path``.
    """
    proto = _export_graph(fold_batchnorm(model), exporter, opset)
    set_metadata(
        proto,
        {
            **contract_metadata(),
            "svbr.head": getattr(model, "head", "sigmoid"),
            "svbr.exporter": f"torch {torch.__version__} {exporter}",
            **(metadata or {}),
        },
    )
    proto.doc_string = "SVBR-Net: non-blind deblurring of spatially varying defocus blur (svbr-net)"
    if io not in IO_KINDS:
        raise ValueError(f"io must be one of {IO_KINDS}, got {io!r}")
    if io == "uint8":
        proto = wrap_uint8_io(proto, channel_order)
    check_graph(proto, opset)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(out_path.suffix + ".tmp")
    onnx.save(proto, str(tmp))
    tmp.replace(out_path)  # atomic: a failed export never leaves a torn model behind
    return out_path


def check_parity(
    model: nn.Module, onnx_path: str | os.PathLike[str], shapes: list[tuple[int, int, int]] | None = None
) -> list[tuple[tuple[int, int, int], Comparison]]:
    """ONNX Runtime (CPU) against the unfolded PyTorch model on random inputs.

    Returns:
        ``[((N, H, W), Comparison), ...]`` for every shape (default ``PARITY_SHAPES``).
    """
    model = model.eval()

    def run_torch(image: np.ndarray, blur_map: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(image), torch.from_numpy(blur_map)).numpy()

    with create_backend("onnxruntime-cpu", onnx_path) as backend:
        return compare_runners(run_torch, backend, shapes or PARITY_SHAPES)


def check_uint8_parity(
    float_path: str | os.PathLike[str],
    uint8_path: str | os.PathLike[str],
    shapes: list[tuple[int, int, int]] | None = None,
    seed: int = 0,
) -> int:
    """Largest |difference| in uint8 levels between a uint8-I/O model and its float model rounded.

    The float model runs as ``Deblurrer`` runs it (numpy normalisation around
    ONNX Runtime CPU); the uint8 model gets the raw uint8 windows (in its own
    channel order) and radii in px, including radii above 6 px (clipped in both).
    """
    from runtime.deblurrer import image_to_network, map_to_network, network_to_image

    rng = np.random.default_rng(seed)
    worst = 0
    with (
        create_backend("onnxruntime-cpu", float_path, threads=1) as reference,
        create_backend("onnxruntime-cpu", uint8_path, threads=1) as wrapped,
    ):
        order = wrapped.io_channel_order
        for n, height, width in shapes or PARITY_SHAPES:
            images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
            radii = rng.uniform(0.0, 7.0, (n, height, width)).astype(np.float32)
            expected = network_to_image(
                reference.run(image_to_network(images, order), map_to_network(radii)), np.dtype(np.uint8), order
            )
            got = wrapped.run(images, radii)
            worst = max(worst, int(np.abs(got.astype(np.int16) - expected.astype(np.int16)).max()))
    return worst


# --- command line -----------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="svbr export",
        description="Export an SVBR-Net checkpoint to ONNX (BatchNorm folded, dynamic N/H/W, "
        "svbr.* metadata), then check ONNX Runtime against PyTorch.",
    )
    source = parser.add_mutually_exclusive_group()
    add_model(
        source, dest="checkpoint", aliases=("--checkpoint",), help="checkpoint .pt (default: the bundled weights)"
    )
    source.add_argument(
        "--random-init",
        type=int,
        metavar="SEED",
        help="export a randomly initialised network instead (tests and benchmarks only: its output is meaningless)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    add_output(target, dest="out", type=Path, help="the .onnx file to write")
    target.add_argument(
        "--bundled",
        action="store_true",
        help="write the runtime's bundled model (runtime/models/svbrnet.onnx); use after the weights change",
    )
    parser.add_argument(
        "--head",
        choices=("residual", "sigmoid"),
        default="residual",
        help="output head of the --random-init network (a checkpoint records its own)",
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default=DEFAULT_EXPORTER,
        help=f"torch.onnx exporter (default {DEFAULT_EXPORTER})",
    )
    parser.add_argument(
        "--io",
        choices=IO_KINDS,
        default="float32",
        help="graph I/O: float32 (N×3×H×W in [0, 1], the default) or uint8 (raw N×H×W×3 windows "
        "and the radius map in px in, uint8 out; normalisation, rounding and layout in the graph)",
    )
    parser.add_argument(
        "--channel-order",
        choices=("bgr", "rgb"),
        default="bgr",
        help="channel order of --io uint8 images (default bgr, OpenCV's)",
    )
    parser.add_argument("--skip-parity", action="store_true", help="skip the ONNX Runtime vs PyTorch check")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import training.model
    from training.model import SVBRNet, load_model

    if args.random_init is not None:
        torch.manual_seed(args.random_init)
        model, extra = SVBRNet(args.head).eval(), {"svbr.source_checkpoint": f"random-init seed {args.random_init}"}
    else:
        checkpoint = args.checkpoint or training.model.PRETRAINED_PATH
        if not checkpoint.is_file():
            what = "checkpoint" if args.checkpoint else "bundled weights"
            print(f"svbr export: error: {what} not found: {checkpoint}", file=sys.stderr)
            return 2
        model, training_metadata = load_model(checkpoint)
        extra = checkpoint_metadata(checkpoint, training_metadata)
    if args.bundled:
        from runtime.deblurrer import BUNDLED_MODEL_PATH

        out = BUNDLED_MODEL_PATH
    else:
        out = args.out
    # Written beside the target and moved into place only once it passes parity,
    # so a failed export never replaces a good (e.g. the bundled) model.
    unverified = export_onnx(
        model, out.with_name(out.name + ".unverified"), opset=args.opset, exporter=args.exporter, metadata=extra
    )
    worst = 0.0
    if not args.skip_parity:
        for (n, height, width), comparison in check_parity(model, unverified):
            print(f"  parity N={n} {height}×{width}: ONNX Runtime vs PyTorch {comparison}")
            worst = max(worst, comparison.max_abs)
    if worst > PARITY_TOLERANCE:
        unverified.unlink()
        print(
            f"svbr export: error: ONNX Runtime differs from PyTorch by {worst:.3g} "
            f"(> {PARITY_TOLERANCE:g}); nothing written",
            file=sys.stderr,
        )
        return 1
    if args.io == "uint8":
        wrapped = out.with_name(out.name + ".unverified-uint8")
        wrapped_model = wrap_uint8_io(onnx.load(str(unverified)), args.channel_order)
        check_graph(wrapped_model, args.opset)
        onnx.save(wrapped_model, str(wrapped))
        if not args.skip_parity:
            levels = check_uint8_parity(unverified, wrapped)
            print(f"  parity uint8 I/O vs the float model rounded to uint8: max |Δ| = {levels} level(s)")
            if levels > UINT8_PARITY_LEVELS:
                unverified.unlink()
                wrapped.unlink()
                print(
                    f"svbr export: error: uint8-I/O graph differs by {levels} levels; nothing written", file=sys.stderr
                )
                return 1
        unverified.unlink()
        unverified = wrapped
    unverified.replace(out)
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, opset {args.opset}, {args.exporter} exporter, "
        f"{args.io} I/O{' ' + args.channel_order.upper() if args.io == 'uint8' else ''})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
