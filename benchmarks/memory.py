"""Peak memory (RSS) and time of ``runtime.Deblurrer`` on one large image.

    python -m benchmarks.memory                       # 6000×4000, tile 512, bundled model
    python -m benchmarks.memory --model m.onnx --height 1000 --width 1500 --json

Run it as its own process: the peak (``VmHWM``, which starts afresh at exec,
unlike ``ru_maxrss``, which inherits the launching process's peak) then covers
exactly imports + model + inputs + tiled inference. It
prints the peak after each stage; the difference between the last two is
what inference adds on top of the image-sized input and output arrays.
Content does not change memory or time, so the input is random.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import peak_rss_mb
from runtime.arguments import add_alias, add_size


def measure(
    model: Path | None, height: int, width: int, tile: int | None, batch_size: int | None, backend: str
) -> dict[str, float | int | str | None]:
    """Deblur one random H×W uint8 image and report peak RSS after each stage (MB) and seconds."""
    from runtime.deblurrer import Deblurrer

    report: dict[str, float | int | str | None] = {"height": height, "width": width, "tile": tile}
    report["peak_rss_after_import_mb"] = peak_rss_mb()
    deblurrer = Deblurrer(model, backend=backend, tile=tile, batch_size=batch_size)
    report["backend"] = deblurrer.backend.name
    report["batch_size"] = deblurrer.batch_size
    report["tiles"] = deblurrer.count_tiles(height, width)
    report["peak_rss_after_model_mb"] = peak_rss_mb()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    radius = rng.random((height, width), dtype=np.float32) * np.float32(6.0)
    report["peak_rss_after_inputs_mb"] = peak_rss_mb()
    start = time.perf_counter()
    sharp = deblurrer.deblur(image, radius)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["peak_rss_mb"] = peak_rss_mb()
    report["input_and_output_mb"] = round((image.nbytes + radius.nbytes + sharp.nbytes) / 1e6, 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="ONNX model (default: the bundled model)")
    add_size(parser, default=(6000, 4000), help="image size WxH (default 6000x4000)")
    add_alias(parser, "--height", "height", "--size WxH", type=int)
    add_alias(parser, "--width", "width", "--size WxH", type=int)
    parser.add_argument("--tile", type=int, default=512, help="0 = full frame")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--backend", default="auto", help="inference backend (default auto)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    width, height = getattr(args, "width", args.size[0]), getattr(args, "height", args.size[1])
    report = measure(args.model, height, width, args.tile or None, args.batch_size, args.backend)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:26} {value:.1f}" if isinstance(value, float) else f"{key:26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
