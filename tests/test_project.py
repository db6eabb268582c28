"""Project hygiene: version, licence, type markers, README shape, and the generated documentation pages."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("training", "export", "runtime", "calibration", "benchmarks")


def load_gen_pages():
    spec = importlib.util.spec_from_file_location("gen_pages", REPO / "docs" / "gen_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_svbr_version_prints_the_one_version(capsys):
    import runtime
    import svbr_cli
    from runtime._version import __version__

    assert runtime.__version__ == __version__ and __version__.count(".") >= 2
    assert svbr_cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"svbr {__version__}"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in pyproject["project"]["dynamic"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "runtime._version.__version__"}


def test_licence_and_type_markers_ship():
    assert "MIT License" in (REPO / "LICENSE").read_text()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for package in PACKAGES:
        assert (REPO / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]


def test_readme_is_short_and_keeps_its_markers_and_set_up_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 300
    assert readme.index("<!-- results:start -->") < readme.index("<!-- results:end -->")
    assert "pip install -e . && svbr demo" in readme
    assert 'pip install torch==2.13.0 && pip install -e ".[dev]" && python -m pytest -q' in readme
    import re

    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert "docs/getting-started.md" in links and "CHANGELOG.md" in links
    for link in links:  # relative links resolve in the repository (generated pages are not linked)
        assert link.startswith("http") or (REPO / link).exists(), link


def test_results_page_renders_tables_pictures_and_json(tmp_path, monkeypatch):
    gen = load_gen_pages()
    folder = tmp_path / "reports" / "model"
    folder.mkdir(parents=True)
    (folder / "eval.md").write_text("# Title\n\n| a | b |\n| --- | --- |\n| 1 | 2 |\n")
    (folder / "eval.json").write_text(json.dumps({"samples": 3}))  # the .md of the same stem is shown
    (folder / "demo.png").write_bytes(b"\x89PNG")
    (folder / "other.json").write_text(json.dumps({"speed": 1.5, "rows": [1, 2]}))
    text, pictures = gen.report_page(folder)
    assert text.startswith("# Model quality")
    assert "| 1 | 2 |" in text and "# Title" not in text
    assert "![Demo" in text and "(model/demo.png)" in text and pictures == [folder / "demo.png"]
    assert "| `speed` | 1.50 |" in text and '??? note "`reports/model/other.json` (raw)"' in text
    assert text.index("## Demo") < text.index("## Evaluation") < text.index("## Other")


@pytest.mark.slow
def test_cli_reference_has_every_subcommand_help():
    import svbr_cli

    text = load_gen_pages().cli_reference()
    for command in svbr_cli.COMMANDS:
        assert f"## svbr {command}\n" in text
        assert f"usage: svbr {command}" in text
