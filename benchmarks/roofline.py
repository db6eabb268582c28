"""A roofline projection of SVBR-Net's network time on Jetson GPUs: arithmetic, not a measurement.

    python -m benchmarks.roofline --sizes 1280x720,1920x1080 -o reports/benchmarks

Per convolution (Conv, ConvTranspose) of the exported graph at a frame size,
from ONNX shape inference:

- work: 2 × multiply-accumulates (``calibration.graph.conv_costs``, whose FLOPs
  also weigh the INT8/FP16 trade-off of ``svbr calibrate --keep-fp16``);
- traffic: its input and output activations once each plus its weights, in the
  precision's bytes per element. TensorRT fuses BatchNorm (already folded),
  ReLU, the residual Adds and Concats into the convolutions around them, so
  those cost no separate pass; that makes this a lower bound on traffic.

Each layer takes ``max(work / peak ops, traffic / bandwidth)``; the frame takes
their sum. Real kernels reach a fraction of both peaks (often 50–70 %), so read
the result as the best case a device allows, and the split between
compute-bound and memory-bound layers as the useful part.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx

from benchmarks._common import parse_resolution
from calibration.graph import LayerCost, conv_costs
from runtime.arguments import add_output
from runtime.deblurrer import BUNDLED_MODEL_PATH

BYTES_PER_ELEMENT = {"fp16": 2, "int8": 1}


@dataclass(frozen=True)
class Device:
    """Datasheet peaks of a GPU: dense Tensor Core throughput (sparse figures halved) and DRAM bandwidth."""

    name: str
    dense_tops: dict[str, float]  # precision -> 10^12 operations per second
    bandwidth_gb_s: float
    source: str


#: NVIDIA's published peaks (GPU only, no DLA): dense = the sparse INT8 TOPS / 2, FP16 = INT8 / 2.
DEVICES: tuple[Device, ...] = (
    Device(
        "Jetson AGX Orin 64GB (MAXN)",
        {"int8": 85.0, "fp16": 42.5},
        204.8,
        "Jetson AGX Orin Series Technical Brief: GPU 170 sparse INT8 TOPS, 204.8 GB/s LPDDR5",
    ),
    Device(
        "Jetson Orin Nano 8GB Super",
        {"int8": 33.5, "fp16": 16.75},
        102.0,
        "Jetson Orin Nano Super Developer Kit datasheet: 67 sparse INT8 TOPS, 102 GB/s LPDDR5",
    ),
)


def project(costs: list[LayerCost], device: Device, precision: str) -> dict[str, float]:
    """Roofline time of the convolutions on ``device`` in ``precision``; ms, and the memory-bound share."""
    ops_per_s = device.dense_tops[precision] * 1e12
    bytes_per_s = device.bandwidth_gb_s * 1e9
    size = BYTES_PER_ELEMENT[precision]
    compute = np.array([c.flops / ops_per_s for c in costs])
    memory = np.array([(c.activation_elements + c.weight_elements) * size / bytes_per_s for c in costs])
    layer = np.maximum(compute, memory)
    return {
        "ms": float(layer.sum() * 1e3),
        "compute_only_ms": float(compute.sum() * 1e3),
        "memory_only_ms": float(memory.sum() * 1e3),
        "memory_bound_time_share": float(layer[memory > compute].sum() / layer.sum()),
    }


def report(model_path: Path, sizes: list[tuple[int, int]]) -> dict:
    model = onnx.load(str(model_path))
    rows = []
    for width, height in sizes:
        costs = conv_costs(model, height, width)
        gflops = sum(c.flops for c in costs) / 1e9
        for device in DEVICES:
            for precision in ("fp16", "int8"):
                rows.append(
                    {
                        "size": f"{width}x{height}",
                        "device": device.name,
                        "precision": precision,
                        "conv_gflops": round(gflops, 1),
                        "activation_mb": round(
                            sum(c.activation_elements for c in costs) * BYTES_PER_ELEMENT[precision] / 1e6, 1
                        ),
                        **{k: round(v, 2) for k, v in project(costs, device, precision).items()},
                    }
                )
    return {"model": str(model_path), "devices": [asdict(d) for d in DEVICES], "rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "| frame | device | precision | conv GFLOP | activation traffic MB | compute-only ms | "
        "memory-only ms | roofline ms | memory-bound share |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['size']} | {r['device']} | {r['precision']} | {r['conv_gflops']} | {r['activation_mb']} | "
            f"{r['compute_only_ms']:.1f} | {r['memory_only_ms']:.1f} | **{r['ms']:.1f}** | "
            f"{r['memory_bound_time_share']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.roofline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=BUNDLED_MODEL_PATH, help="float ONNX model (default: bundled)")
    parser.add_argument(
        "--sizes",
        default="1280x720,1920x1080",
        type=lambda s: [parse_resolution(p) for p in s.split(",")],
        help="WIDTHxHEIGHT,... (multiples of 4)",
    )
    add_output(parser, dest="out", type=Path, help="folder for roofline.json and roofline.md")
    args = parser.parse_args(argv)
    result = report(args.model, args.sizes)
    table = markdown(result)
    print(table, end="")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "roofline.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "roofline.md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
