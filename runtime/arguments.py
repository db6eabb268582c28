"""argparse value types shared by the ``svbr`` commands (no torch, no training imports)."""

from __future__ import annotations

import argparse


def size_hw(text: str, minimum: int = 8) -> tuple[int, int]:
    """'360x340' -> (360, 340): height × width in px, each at least ``minimum``."""
    try:
        height, width = (int(v) for v in text.lower().strip().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 360x340 (H x W), got {text!r}") from None
    if height < minimum or width < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return height, width


def add_deblur_options(parser: argparse.ArgumentParser) -> None:
    """``--strength`` and ``--max-radius``, shared by ``svbr deblur`` and ``svbr stream`` (``Deblurrer``'s options)."""
    from runtime.pyramid import DEFAULT_MAX_RADIUS_PX, LIMIT_MAX_RADIUS_PX

    parser.add_argument(
        "--strength",
        type=float,
        default=1.0,
        metavar="S",
        help="how much of the correction to apply, 0-2: output = input + S × (deblurred − input); "
        "0 = the input, 1 = SVBR-Net's output (default), above 1 exaggerates it",
    )
    parser.add_argument(
        "--max-radius",
        type=float,
        default=DEFAULT_MAX_RADIUS_PX,
        metavar="PX",
        help=f"largest blur radius deblurred, 6-{LIMIT_MAX_RADIUS_PX:g} px (default {DEFAULT_MAX_RADIUS_PX:g}): "
        "radii above 6 px (the trained range) are deblurred on pyramid levels 1/2, 1/4, ... (at most 1/3 more "
        "work), radii above PX are clipped to PX with a warning; 6 = one full-resolution pass with radii above "
        "6 px clipped. Also the limit of estimated maps",
    )


def deblur_option_error(args: argparse.Namespace) -> str | None:
    """The problem with ``--strength`` / ``--max-radius`` (naming the option), or None when both are in range."""
    from runtime.pyramid import validate_max_radius
    from runtime.validation import validate_strength

    for option, check, value in (
        ("--strength", validate_strength, args.strength),
        ("--max-radius", validate_max_radius, args.max_radius),
    ):
        try:
            check(value)
        except ValueError as error:
            return f"{option}: {error}"
    return None


# --- the shared options: one spelling per meaning across every ``svbr`` command and benchmark script ---------------
#
#   -o/--output   what the command writes (file or folder)      old: --out
#   --model       the model the command reads (ONNX, engine or   old: --onnx, --models, --checkpoint
#                 a PyTorch checkpoint where it runs PyTorch)
#   --size WxH    a frame / sample size, width × height          old: H×W sizes, --height/--width
#                 (OpenCV's order)
#   --device      auto | cpu | cuda | cuda:N | N                 old: a bare GPU index in build-engine
#   --threads N   CPU threads
#   --backend     inference backend name
#   -q/--quiet    no progress output
#
# Old spellings stay as hidden aliases (absent from --help) that print one deprecation line to stderr.

#: canonical option string -> the meaning it stands for (tests/test_cli_options.py checks every parser against it)
SHARED_OPTIONS: dict[str, str] = {
    "--output": "output",
    "--model": "model",
    "--size": "size",
    "--device": "device",
    "--threads": "threads",
    "--backend": "backend",
    "--quiet": "quiet",
}
#: old / stray spellings that must not be visible in any --help: spelling -> the shared option to use instead
RETIRED_OPTIONS: dict[str, str] = {
    "--out": "-o/--output",
    "--onnx": "--model",
    "--models": "--model",
    "--checkpoint": "--model",
    "--height": "--size WxH",
    "--width": "--size WxH",
    "--gpu": "--device",
    "--num-threads": "--threads",
    "--silent": "-q/--quiet",
}

_warned: set[str] = set()


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr per old spelling and process."""
    import sys

    if old not in _warned:
        _warned.add(old)
        print(f"warning: {old} is deprecated, use {new}", file=sys.stderr)


class _DeprecatedAlias(argparse.Action):
    """``store`` (or ``store_true`` with ``nargs=0``) under an old spelling, warning once."""

    def __init__(self, option_strings, dest, new: str = "", const=None, nargs=None, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, nargs=nargs, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warn_deprecated(option_string or self.option_strings[0], self.new)
        if self.nargs == 0:
            values = self.const
        setattr(namespace, self.dest, values)


def add_alias(parser, old: str | list[str] | tuple[str, ...], dest: str, new: str, **kwargs) -> None:
    """Register ``old`` (one spelling or several) as a hidden, warning alias of the option stored in ``dest``."""
    olds = [old] if isinstance(old, str) else list(old)
    parser.add_argument(
        *olds, dest=dest, action=_DeprecatedAlias, new=new, help=argparse.SUPPRESS, default=argparse.SUPPRESS, **kwargs
    )


def _with_aliases(
    parser,
    flags: tuple[str, ...],
    dest: str,
    aliases: tuple[str, ...] | list[str],
    required: bool,
    alias_kwargs: dict,
    **kwargs,
) -> argparse.Action:
    target = parser
    if required and aliases:
        # a required option with an alias: exactly one of them (the alias is hidden from the error too)
        target = parser.add_mutually_exclusive_group(required=True)
        required = False
    action = target.add_argument(*flags, dest=dest, required=required, **kwargs)
    if aliases:
        add_alias(target, list(aliases), dest, "/".join(flags), **alias_kwargs)
    return action


def add_output(
    parser,
    *,
    dest: str = "output",
    help: str = "output path",
    required: bool = False,
    default=None,
    type=None,
    metavar: str | None = None,
    aliases=("--out",),
) -> argparse.Action:
    """``-o/--output`` (old spelling ``--out`` kept hidden). ``parser`` may be a (mutually exclusive) group."""
    extra = {"type": type} if type is not None else {}
    return _with_aliases(
        parser,
        ("-o", "--output"),
        dest,
        aliases,
        required,
        extra,
        default=default,
        metavar=metavar or "PATH",
        help=help,
        **extra,
    )


def add_model(
    parser,
    *,
    dest: str = "model",
    help: str,
    required: bool = False,
    default=None,
    type=None,
    metavar: str | None = None,
    aliases=(),
    action: str | None = None,
) -> argparse.Action:
    """``--model`` (old spellings such as ``--onnx``/``--checkpoint`` passed as ``aliases``, kept hidden)."""
    from pathlib import Path

    extra = {"type": type or Path} if action != "append" else {"type": type or str}
    kwargs = dict(default=default, metavar=metavar or "PATH", help=help, **extra)
    if action:
        kwargs["action"] = action
    alias_kwargs = dict(extra)
    return _with_aliases(parser, ("--model",), dest, aliases, required, alias_kwargs, **kwargs)


def size_wh(text: str, minimum: int = 8) -> tuple[int, int]:
    """'640x480' -> (640, 480): width × height in px (OpenCV's order), each at least ``minimum``; 'N' -> (N, N)."""
    try:
        parts = [int(v) for v in text.lower().strip().replace("×", "x").split("x")]
        if len(parts) == 1:
            parts = parts * 2
        width, height = parts
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480 (W x H), got {text!r}") from None
    if height < minimum or width < minimum:
        raise argparse.ArgumentTypeError(f"size must be at least {minimum}x{minimum}, got {text!r}")
    return width, height


size_wh.shared_size = True  # type: ignore[attr-defined]  # marks the shared WxH parser for the option test


def size_wh_at_least(minimum: int):
    """``size_wh`` with another minimum side."""

    def parse(text: str) -> tuple[int, int]:
        return size_wh(text, minimum=minimum)

    parse.shared_size = True  # type: ignore[attr-defined]
    parse.__name__ = "size_wh"
    return parse


def add_size(
    parser, *, dest: str = "size", help: str, default: tuple[int, int] | None = None, minimum: int = 8, aliases=()
) -> argparse.Action:
    """``--size WxH`` -> (width, height)."""
    return _with_aliases(
        parser,
        ("--size",),
        dest,
        aliases,
        False,
        {"type": size_wh_at_least(minimum)},
        type=size_wh_at_least(minimum),
        default=default,
        metavar="WxH",
        help=help,
    )


def device_spec(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or a bare ``N`` (= ``cuda:N``) -> the normalised string."""
    value = text.strip().lower()
    if value.isdigit():
        return f"cuda:{int(value)}"
    if value in ("auto", "cpu", "cuda"):
        return value
    if value.startswith("cuda:") and value[5:].isdigit():
        return f"cuda:{int(value[5:])}"
    raise argparse.ArgumentTypeError(f"device must be auto, cpu, cuda, cuda:N or N, got {text!r}")


def cuda_index(device: str) -> int:
    """The GPU index of a ``device_spec`` value: ``cuda`` -> 0, ``cuda:N`` -> N; ValueError for cpu."""
    if device in ("cuda", "auto"):
        return 0
    if device.startswith("cuda:"):
        return int(device[5:])
    raise ValueError(f"not a CUDA device: {device!r}")


def add_device(
    parser, *, help: str, default: str = "auto", dest: str = "device", choices: tuple[str, ...] | None = None
) -> argparse.Action:
    """``--device auto|cpu|cuda|cuda:N|N`` (``choices`` limits the accepted kinds: ``cuda`` admits ``cuda:N``)."""

    def parse(text: str) -> str:
        value = device_spec(text)
        if choices is not None and value not in choices and value.split(":")[0] not in choices:
            raise argparse.ArgumentTypeError(f"device must be one of {', '.join(choices)} here, got {text!r}")
        return value

    parse.__name__ = "device"
    return parser.add_argument(
        "--device",
        dest=dest,
        type=parse,
        default=default,
        metavar="|".join(choices) if choices else "DEVICE",
        help=help,
    )


def add_threads(parser, *, help: str, default: int | None = None, dest: str = "threads") -> argparse.Action:
    """``--threads N``."""
    return parser.add_argument("--threads", dest=dest, type=int, default=default, metavar="N", help=help)


def add_quiet(parser, *, help: str = "no progress output") -> argparse.Action:
    """``-q/--quiet``."""
    return parser.add_argument("-q", "--quiet", action="store_true", help=help)
