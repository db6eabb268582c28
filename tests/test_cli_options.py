"""One interface: every ``svbr`` subcommand and benchmark script spells a shared meaning the same way.

The shared options live in :mod:`runtime.arguments` (``-o/--output``, ``--model``, ``--size WxH``,
``--device``, ``--threads``, ``--backend``, ``-q/--quiet``); old spellings are hidden aliases that warn.
"""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

import svbr_cli
from runtime.arguments import RETIRED_OPTIONS, add_model, add_output, add_size, device_spec

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = sorted(
    f"benchmarks.{path.stem}"
    for path in (REPO / "benchmarks").glob("*.py")
    if not path.stem.startswith("_") and "def main(" in path.read_text()
)
MODULES = sorted({module for module, _ in svbr_cli.COMMANDS.values()} | set(BENCHMARKS))


class _Captured(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def parser_of(module_name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The module's parser: ``build_parser()`` / ``_parser()`` where it has one, else the one ``main`` parses with."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:  # e.g. torch missing in a runtime-only environment
        pytest.skip(f"{module_name} needs {error.name}")
    for name in ("build_parser", "_parser"):
        if callable(getattr(module, name, None)):
            return getattr(module, name)()

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
    with pytest.raises(_Captured) as caught:
        module.main([])
    return caught.value.parser


def visible_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.help is not argparse.SUPPRESS and action.option_strings]


def hidden_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [action for action in parser._actions if action.help is argparse.SUPPRESS and action.option_strings]


def by_option(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in visible_actions(parser) for option in action.option_strings}


@pytest.mark.parametrize("module_name", MODULES)
def test_shared_options_one_spelling(module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = parser_of(module_name, monkeypatch)
    options = by_option(parser)
    problems = [f"{option}: use {RETIRED_OPTIONS[option]}" for option in options if option in RETIRED_OPTIONS]
    for short, long in (("-o", "--output"), ("-q", "--quiet")):
        if short in options or long in options:
            if options.get(short) is not options.get(long):
                problems.append(f"{short} and {long} must be one option")
    if "--size" in options:
        parse = options["--size"].type
        try:
            parsed = parse("64x48") if parse else None
        except argparse.ArgumentTypeError as error:
            parsed = error
        if parsed not in ((64, 48), [64, 48]):
            problems.append(f"--size must parse WxH as (width, height), got {parsed!r} for 64x48")
    if "--device" in options:
        parse = options["--device"].type
        accepted = [text for text in ("cpu", "cuda", "cuda:1", "1") if _accepts(parse, text)]
        if "cuda:1" in accepted and (parse is None or parse("1") != parse("cuda:1")):
            problems.append("--device must read a bare N as cuda:N")
        if not accepted or accepted == ["cpu"] and not _accepts(parse, "auto"):
            problems.append(f"--device accepts none of cpu/cuda/cuda:N ({parse})")
    if "--threads" in options and options["--threads"].type is not int:
        problems.append("--threads must take an int")
    for action in hidden_actions(parser):
        if action.dest in ("help", "worker"):
            continue
        hidden = [option for option in action.option_strings if option not in RETIRED_OPTIONS]
        if hidden and not hasattr(action, "new"):
            problems.append(f"hidden option {hidden} is not a deprecated alias")
    assert not problems, f"{module_name}: " + "; ".join(problems)


def _accepts(parse, text: str) -> bool:
    try:
        (parse or str)(text)
    except (argparse.ArgumentTypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize("module_name", MODULES)
def test_old_spellings_absent_from_help(module_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    help_text = parser_of(module_name, monkeypatch).format_help()
    for option in RETIRED_OPTIONS:
        assert not re.search(rf"(?<![\w-]){option}(?![\w-])", help_text), f"{module_name}: {option} visible in --help"


def test_alias_warns_once_and_stores(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime import arguments

    arguments._warned.clear()
    parser = argparse.ArgumentParser()
    add_output(parser, dest="out", type=Path, required=True, help="o")
    add_model(parser, dest="onnx", aliases=("--onnx",), help="m")
    add_size(parser, default=(32, 16), aliases=(), help="s")
    args = parser.parse_args(["--out", "a.png", "--onnx", "m.onnx"])
    assert (args.out, args.onnx, args.size) == (Path("a.png"), Path("m.onnx"), (32, 16))
    parser.parse_args(["--out", "b.png"])
    err = capsys.readouterr().err
    assert err.count("--out is deprecated, use -o/--output") == 1
    assert err.count("--onnx is deprecated, use --model") == 1
    assert parser.parse_args(["-o", "c.png", "--size", "40x20"]).size == (40, 20)
    assert not re.search(r"--out\b(?!put)|--onnx", parser.format_help())
    with pytest.raises(SystemExit):
        parser.parse_args([])  # still required: the error names -o/--output only
    assert "-o/--output" in capsys.readouterr().err


def test_device_spec() -> None:
    assert [device_spec(text) for text in ("auto", "CPU", "cuda", "cuda:2", "3")] == [
        "auto",
        "cpu",
        "cuda",
        "cuda:2",
        "cuda:3",
    ]
    with pytest.raises(argparse.ArgumentTypeError):
        device_spec("gpu0")


def test_build_engine_device_and_aliases(capsys: pytest.CaptureFixture[str]) -> None:
    from runtime import arguments
    from runtime.tensorrt_build import _parser

    arguments._warned.clear()
    args = _parser().parse_args(["--onnx", "m.onnx", "--out", "m.engine", "--device", "1"])
    assert (args.onnx, args.out, args.device) == (Path("m.onnx"), Path("m.engine"), "cuda:1")
    assert _parser().parse_args(["--model", "m.onnx", "-o", "e", "--device", "cuda:2"]).device == "cuda:2"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--model", "m.onnx", "--device", "cpu"])
    assert "deprecated" in capsys.readouterr().err
