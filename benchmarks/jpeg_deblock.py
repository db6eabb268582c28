"""Does removing JPEG blocking before the network help? (issue 18: JPEG 80 is the one target still missed.)

    python -m benchmarks.jpeg_deblock --cache cache/eval-val-360x340 --samples 16     # ~4 min, 1 core

On ``svbr eval``'s validation samples (true maps), the blurry image is compressed as ``svbr eval``'s
JPEG 80 column does it (``training.photos.degrade_delivered``, OpenCV, 4:2:0 chroma), then deblurred by
the bundled weights (PyTorch, ``training.evaluate.run_network``) as it is, and after a classical
deblocking: re-application of JPEG (A. Nosratinia, "Enhancement of JPEG-compressed images by
re-application of JPEG", 2001): the image is shifted by every (dy, dx) of the 8×8 grid (a step of
``--shift-step`` px), compressed again at a quality, shifted back, and the results averaged.

It needs the quality the image was compressed with (here known: 80). Rows: the input's PSNR against the
clean blurry image (how much JPEG error the deblocking removes) and the deblurred PSNR against the sharp
photo. Writes ``jpeg_deblock.json`` and ``.md`` to ``-o`` (default ``reports/model``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

#: JPEG's block size in px: the grid the re-application shifts over.
JPEG_BLOCK_PX: int = 8
#: The quality of ``svbr eval``'s JPEG column (``training.photos.VALIDATION_DEGRADATIONS``).
VALIDATION_QUALITY: int = 80
DEFAULT_OUT = Path("reports/model")


def reapply_jpeg(rgb_uint8: np.ndarray, quality: int, shift_step_px: int = 1) -> np.ndarray:
    """Deblock a JPEG-decoded image by averaging JPEG re-compressions of its shifted copies.

    Args:
        rgb_uint8: H×W×3 uint8 RGB, a decoded JPEG.
        quality: JPEG quality (1-100) of the re-compressions: the quality the image was compressed with.
        shift_step_px: step of the (dy, dx) shifts over the 8×8 grid: 1 → 64 shifts, 2 → 16, 8 → (0, 0) only.

    Returns:
        H×W×3 uint8: the mean of the re-compressed copies, rounded.
    """
    from training.degradations import jpeg

    if JPEG_BLOCK_PX % shift_step_px:
        raise ValueError(f"shift_step_px must divide {JPEG_BLOCK_PX}, got {shift_step_px}")
    height, width = rgb_uint8.shape[:2]
    pad = JPEG_BLOCK_PX
    # Reflect padding, not a cyclic roll: a roll would put the far border next to the near one.
    padded = np.pad(rgb_uint8, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    total = np.zeros(rgb_uint8.shape, np.float64)
    shifts = range(0, JPEG_BLOCK_PX, shift_step_px)
    for dy in shifts:
        for dx in shifts:
            compressed = jpeg(np.ascontiguousarray(padded[pad - dy :, pad - dx :]), quality)
            total += compressed[dy : dy + height, dx : dx + width]
    return np.clip(np.rint(total / len(shifts) ** 2), 0, 255).astype(np.uint8)


def run(cache: Path, samples: int, shift_steps: tuple[int, ...], checkpoint: Path | None) -> dict[str, Any]:
    from runtime.metrics import psnr
    from training.cache import list_samples, read_sample
    from training.evaluate import run_network, spread
    from training.model import PRETRAINED_PATH, load_model
    from training.photos import VALIDATION_DEGRADATIONS, degrade_delivered

    model, metadata = load_model(checkpoint or PRETRAINED_PATH)
    model.eval()
    files = spread(list_samples(cache, "val"), samples)
    if not files:
        raise FileNotFoundError(f"no validation samples in {cache}; make them with svbr synth (see svbr eval --help)")
    degradation_index = list(VALIDATION_DEGRADATIONS).index("jpeg80")
    rows: dict[str, dict[str, list[float]]] = {}
    for sample_index, path in enumerate(files):
        sample = read_sample(path)
        if np.array_equal(sample.blurry, sample.sharp):
            continue
        # The same draw as svbr eval's JPEG column for this sample position.
        compressed = degrade_delivered(
            sample.blurry, "jpeg80", np.random.default_rng([sample_index, degradation_index])
        )
        inputs = {"clean": sample.blurry, "JPEG 80": compressed}
        for step in shift_steps:
            shifts = (JPEG_BLOCK_PX // step) ** 2
            inputs[f"JPEG 80, re-applied ({shifts} shifts)"] = reapply_jpeg(compressed, VALIDATION_QUALITY, step)
        for name, image in inputs.items():
            row = rows.setdefault(name, {"input": [], "deblurred": []})
            if name != "clean":
                row["input"].append(psnr(sample.blurry, image))
            row["deblurred"].append(psnr(sample.sharp, run_network(model, image, sample.true_map)))
        print(f"  {path.name}: " + ", ".join(f"{n} {r['deblurred'][-1]:.2f}" for n, r in rows.items()), flush=True)
    return {
        "cache": str(cache),
        "samples": len(rows["clean"]["deblurred"]),
        "weights_step": metadata.get("step"),
        "weights_run": metadata.get("config", {}).get("name"),
        "rows": {
            name: {key: float(np.mean(values)) if values else None for key, values in row.items()}
            for name, row in rows.items()
        },
    }


def to_markdown(report: dict[str, Any], command: str) -> str:
    lines = [
        f"# JPEG deblocking before the network ({report['samples']} validation samples, true maps)",
        "",
        f"Command: `{command}`; weights: step {report['weights_step']} of `{report['weights_run']}`.",
        "",
        "| input | input vs clean blurry (dB) | deblurred vs sharp (dB) |",
        "| --- | ---: | ---: |",
    ]
    for name, row in report["rows"].items():
        inp = "" if row["input"] is None else f"{row['input']:.2f}"
        lines.append(f"| {name} | {inp} | {row['deblurred']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jpeg_deblock", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("cache/eval-val-360x340"), help="svbr eval's sample cache")
    parser.add_argument(
        "--samples", type=int, default=16, help="validation samples, spread over the cache (default 16)"
    )
    parser.add_argument(
        "--shift-steps",
        default="1,2",
        help="comma-separated shift steps in px (1: 64 shifts, 2: 16, 4: 4); default %(default)s",
    )
    from runtime.arguments import add_model, add_output

    add_model(parser, help="PyTorch weights (.pt; default: the bundled ones)")
    add_output(
        parser, type=Path, default=DEFAULT_OUT, help="folder for jpeg_deblock.json and .md (default %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        steps = tuple(int(s) for s in args.shift_steps.split(","))
    except ValueError:
        parser.error(f"--shift-steps must be comma-separated integers, got {args.shift_steps!r}")
    if args.samples < 1:
        parser.error(f"--samples must be at least 1, got {args.samples}")
    for step in steps:
        if step < 1 or JPEG_BLOCK_PX % step:
            parser.error(f"--shift-steps: each step must divide {JPEG_BLOCK_PX}, got {step}")
    import torch

    torch.set_num_threads(1)
    report = run(args.cache, args.samples, steps, args.model)
    command = "python -m benchmarks.jpeg_deblock " + " ".join(sys.argv[1:] if argv is None else argv)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "jpeg_deblock.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = to_markdown(report, command.strip())
    (args.output / "jpeg_deblock.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
