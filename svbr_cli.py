"""The `svbr` command: one subcommand per job, each owned by the module that does it.

Subcommands are imported only when run, so `svbr deblur` never imports torch.
"""

from __future__ import annotations

import importlib
import sys

#: subcommand -> (module with a ``main(argv) -> int``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("training.cache", "make cached synthetic training samples from sharp images"),
    "train": ("training.train", "train SVBR-Net from a config file (resumable)"),
    "curve": ("training.curve", "learning curve of a training run: picture and table"),
    "eval": ("training.evaluate", "Table-1-style report: blurry, classical baseline, SVBR-Net"),
    "eval-real": ("benchmarks.real", "real photos: PSNR/SSIM on the Pixel 4 dual-pixel set (measurement only)"),
    "export": ("export.onnx_export", "export a checkpoint to ONNX"),
    "calibrate": ("calibration.cli", "make an FP16 or INT8 (QDQ) ONNX model"),
    "validate": ("calibration.validate", "accuracy of ONNX models against PyTorch FP32"),
    "build-engine": ("runtime.tensorrt_build", "build a TensorRT engine from an ONNX model"),
    "deblur": ("runtime.cli", "deblur an image (or a folder) given its blur map"),
    "estimate": ("runtime.estimate_cli", "estimate the blur map of a photo (or a folder): radius per pixel"),
    "stream": ("runtime.stream.cli", "deblur a video, image sequence, camera or network stream frame by frame"),
    "demo": ("runtime.demo", "self-contained demo: synthesise, blur, deblur, score"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: svbr COMMAND [options]   (svbr COMMAND --help for details; svbr --version)", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from runtime._version import __version__

        print(f"svbr {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"svbr: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
