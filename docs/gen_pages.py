"""Generated documentation pages: the CLI reference and the results pages.

Used two ways:

* as a mkdocs hook (``hooks:`` in ``mkdocs.yml``): every ``mkdocs build`` / ``mkdocs serve`` renders

  - ``reference/cli.md``: the ``--help`` text of every ``svbr`` subcommand, taken from the
    parsers themselves (``svbr_cli.COMMANDS``: each module's ``main(["--help"])``), so the
    reference cannot drift from the code;
  - ``results/index.md`` and ``results/<folder>.md`` for every folder of ``reports/``: its
    Markdown tables, its pictures and tables rendered from its JSON reports. Rerunning the
    commands that write a report and rebuilding the site refreshes the page.

  Nothing generated is written into ``docs/``: the pages are added to the build in memory.
  ``on_config`` also appends to the "Guides" section any ``docs/*.md`` page the nav does not name,
  so a new page appears without editing ``mkdocs.yml``.

* as a script, to read the generated Markdown without mkdocs::

      python docs/gen_pages.py --out build/docs-generated
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
REPORTS = REPO / "reports"

#: Column width of the rendered --help text.
HELP_COLUMNS = 100

#: Titles of the report folders (others: the folder name, capitalised).
FOLDER_TITLES = {
    "model": "Model quality and precision parity",
    "estimate": "Blur-map estimation",
    "benchmarks": "Benchmarks",
    "real": "Real photographs",
    "large_blur": "Large blur",
}
#: Section titles of report files, by stem (others: the stem, capitalised).
STEM_TITLES = {
    "demo": "Demo: blurry | blur map | SVBR-Net | ground truth",
    "eval": "Evaluation on the validation split (`svbr eval`)",
    "learning_curve": "Learning curve (`svbr curve`; the runs are named in its title)",
    "parity": "Parity of the precision graphs (`svbr validate`)",
    "int8_sensitivity": "INT8 per-layer sensitivity (`svbr calibrate --sensitivity`)",
    "precision_table": "Accuracy and CPU latency of every precision graph",
    "compare_cpu": "CPU latency, models alternated (`benchmarks.compare_cpu`)",
    "native_latency": "C++ CLI vs Python Deblurrer (`benchmarks.native_latency`)",
    "roofline": "Jetson roofline projection (`benchmarks.roofline`)",
    "estimate": "Estimator accuracy and speed (`benchmarks.estimate`)",
    "calibration": "Per-level calibration plot",
    "real": "Real photographs (`benchmarks.real`)",
    "large_blur": "Large blur",
}
#: Order of the sections within a page (stems not listed follow, sorted).
STEM_ORDER = [
    "demo",
    "real",
    "eval",
    "learning_curve",
    "parity",
    "int8_sensitivity",
    "precision_table",
    "compare_cpu",
    "native_latency",
    "roofline",
    "estimate",
    "calibration",
]


# --- CLI reference --------------------------------------------------------------------------------


def command_help(module_name: str, command: str) -> str:
    """The ``--help`` text of one subcommand, as ``svbr COMMAND --help`` prints it."""
    module = importlib.import_module(module_name)
    out = io.StringIO()
    saved_argv0, saved_columns = sys.argv[0], os.environ.get("COLUMNS")
    sys.argv[0] = f"svbr {command}"
    os.environ["COLUMNS"] = str(HELP_COLUMNS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            try:
                module.main(["--help"])
            except SystemExit:
                pass
    finally:
        sys.argv[0] = saved_argv0
        if saved_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved_columns
    text = out.getvalue().rstrip()
    if not text.startswith("usage:"):
        raise RuntimeError(f"{module_name}.main(['--help']) printed no argparse help")
    return text


def cli_reference() -> str:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import svbr_cli

    lines = [
        "# Command line",
        "",
        "Generated from the argparse parsers at build time (`docs/gen_pages.py`): this is what",
        "`svbr COMMAND --help` prints. `svbr --version` prints the package version.",
        "",
        "```text",
        svbr_cli.usage(),
        "```",
        "",
    ]
    for command, (module_name, summary) in svbr_cli.COMMANDS.items():
        lines += [
            f"## svbr {command}",
            "",
            f"{summary[0].upper()}{summary[1:]}. Module: `{module_name}`.",
            "",
            "```text",
            command_help(module_name, command),
            "```",
            "",
        ]
    return "\n".join(lines)


# --- results pages --------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]], align: str | None = None) -> str:
    align = align or "-" * len(header)
    marks = ["---:" if a == "r" else "---" for a in align]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    out += ["| " + " | ".join(_fmt(cell) if not isinstance(cell, str) else cell for cell in row) + " |" for row in rows]
    return "\n".join(out)


def render_parity(data: dict) -> str:
    rows = [
        [
            "blurry input",
            "",
            "",
            f"{data['blurry_input']['psnr_mean_db']:.2f} / {data['blurry_input']['ssim_mean']:.4f}",
            "",
            "",
        ],
        [
            f"PyTorch FP32 (reference, `{data['reference']['name']}`)",
            "",
            "",
            f"{data['reference']['psnr_mean_db']:.2f} / {data['reference']['ssim_mean']:.4f}",
            "",
            "",
        ],
    ]
    for model in data["models"]:
        pytorch, truth = model["vs_pytorch"], model["vs_ground_truth"]
        rows.append(
            [
                f"`{Path(model['model']).name}`",
                model["precision"],
                f"{pytorch['ssim_mean']:.5f} / {pytorch['ssim_min']:.5f}",
                f"{truth['psnr_mean_db']:.2f} / {truth['ssim_mean']:.4f}",
                f"{-truth['psnr_loss_db']:+.2f} dB",
                "pass" if model["passed"] else "**FAIL**",
            ]
        )
    thresholds = ", ".join(
        f"{name}: mean SSIM ≥ {t['min_mean_ssim']}"
        + (f", ≤ {t['max_psnr_loss_db']} dB lost" if t.get("max_psnr_loss_db") else "")
        for name, t in data["thresholds"].items()
    )
    settings = data.get("settings", {})
    return (
        f"{data['samples']} validation samples of {data['sample_size'][0]}×{data['sample_size'][1]} "
        f"on `{data['backend']}`; checkpoint `{Path(str(settings.get('checkpoint', '?'))).name}`. "
        f"Thresholds: {thresholds}.\n\n"
        + _table(
            ["model", "precision", "SSIM vs PyTorch (mean / min)", "PSNR / SSIM vs truth", "ΔPSNR vs FP32", "result"],
            rows,
        )
    )


def render_int8_sensitivity(data: dict, limit: int = 10) -> str:
    sens = data.get("sensitivity", {})
    parts = []
    if sens:
        rows = [
            [i, f"`{row['layer']}`", f"{row['ssim_lost']:.5f}", f"{row['flop_share']:.2%}"]
            for i, row in enumerate(sens["layers"][:limit], 1)
        ]
        parts.append(
            f"Measured on {sens['samples']} {sens['set']} of {sens['window']} px against the "
            f"{sens['reference']}. Nothing quantized: SSIM {sens['none_quantized']:.5f}; all "
            f"{len(sens['layers'])} layers quantized: {sens['all_quantized']:.5f}. "
            f"The {limit} most sensitive layers:\n\n"
            + _table(["#", "layer", "SSIM lost alone", "share of the FLOPs"], rows, "rlrr")
        )
    mixed = data.get("mixed")
    if mixed:
        layers = ", ".join(f"`{name}`" for name in mixed["layers"]) or "none"
        parts.append(
            f"Mixed INT8/FP16 (`--keep-fp16 {mixed['request']}`, target {mixed['target_ssim']}): "
            f"float16 layers {layers} ({mixed['fp16_flop_share']:.2%} of the FLOPs), mean SSIM "
            f"{mixed['ssim']:.5f}. Made in {data.get('seconds', '?')} s from `{data.get('source')}`."
        )
    return "\n\n".join(parts)


def render_compare_cpu(data: dict) -> str:
    rows = []
    for row in data["results"]:
        rows.append(
            [
                row.get("model", "?"),
                row.get("size", "?"),
                _fmt(row.get("p50_ms"), 1),
                _fmt(row.get("min_ms"), 1),
                _fmt(row.get("speedup_vs_first")) if "speedup_vs_first" in row else _fmt(row.get("speedup")),
            ]
        )
    models = ", ".join(f"{name} = `{path}`" for name, path in data.get("models", {}).items())
    return (
        f"{data.get('threads')} ONNX Runtime thread(s), {data.get('runs')} runs, models alternated in one "
        f"process; load average {data.get('load_average_start')} → {data.get('load_average_end')}. "
        f"Models: {models}.\n\n" + _table(["model", "size", "p50 ms", "min ms", "speed-up vs the first"], rows, "llrrr")
    )


def render_native_latency(data: dict) -> str:
    rows = []
    for row in data["results"]:
        py, cc, proc = row["python"], row["native"], row.get("process", {})
        rows.append(
            [
                row["size"],
                row.get("tile"),
                _fmt(py["deblur_ms"], 1),
                _fmt(cc["deblur_ms"], 1),
                _fmt(py["overhead_ms"], 1),
                _fmt(cc["overhead_ms"], 1),
                f"{_fmt(proc.get('python_process_ms'), 0)} / {_fmt(proc.get('native_process_ms'), 0)}",
                _fmt(proc.get("outputs_equal")),
            ]
        )
    machine = data.get("machine", {})
    return (
        f"`{data.get('backend')}`, {data.get('threads')} thread(s), p50 of {data.get('runs')} runs; "
        f"{machine.get('cpu', '?')} ({', '.join(machine.get('cpu_flags', []))}), "
        f"load average at start {machine.get('load_average_at_start')}.\n\n"
        + _table(
            [
                "size",
                "tile",
                "Python deblur ms",
                "C++ deblur ms",
                "Python overhead ms",
                "C++ overhead ms",
                "cold process Python / C++ ms",
                "outputs equal",
            ],
            rows,
            "lrrrrrrl",
        )
    )


def render_json_generic(data: Any, rel: str) -> str:
    """A JSON report without a renderer: its scalars as a table, the rest folded."""
    scalars = (
        [[f"`{key}`", value] for key, value in data.items() if not isinstance(value, (dict, list))]
        if isinstance(data, dict)
        else []
    )
    text = json.dumps(data, indent=1)
    lines = text.splitlines()
    if len(lines) > 200:
        text = "\n".join(lines[:200]) + f"\n… ({len(lines) - 200} more lines in {rel})"
    out = _table(["key", "value"], scalars) + "\n\n" if scalars else ""
    body = "\n".join("    " + line for line in ["```json", *text.splitlines(), "```"])
    return out + f'??? note "`{rel}` (raw)"\n\n{body}'


#: JSON reports with a dedicated table (by file stem).
JSON_RENDERERS: dict[str, Callable[[dict], str]] = {
    "parity": render_parity,
    "int8_sensitivity": render_int8_sensitivity,
    "compare_cpu": render_compare_cpu,
    "native_latency": render_native_latency,
}


def demote_headings(markdown: str, levels: int = 2) -> str:
    """Shift Markdown headings down (``#`` -> ``###``) outside fenced code, so a report nests in a page."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("#"):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


def _title(stem: str, titles: dict[str, str]) -> str:
    return titles.get(stem, stem.replace("_", " ").replace("-", " ").capitalize())


def report_page(folder: Path) -> tuple[str, list[Path]]:
    """The Markdown page of one ``reports/`` folder and the pictures it shows."""
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    stems = sorted(
        {path.stem for path in files}, key=lambda s: (STEM_ORDER.index(s) if s in STEM_ORDER else len(STEM_ORDER), s)
    )
    pictures: list[Path] = []
    lines = [
        f"# {_title(folder.name, FOLDER_TITLES)}",
        "",
        f"Generated from `reports/{folder.name}/` when the site is built (`docs/gen_pages.py`): "
        "rerun the command that writes a report, then `mkdocs build`, and this page follows.",
        "",
    ]
    for stem in stems:
        group = {path.suffix.lower(): path for path in files if path.stem == stem}
        sections: list[str] = []
        if ".md" in group:
            text = group[".md"].read_text(encoding="utf-8").strip()
            if text.startswith("# "):  # the report's own title becomes the section's
                text = text.split("\n", 1)[1].strip() if "\n" in text else ""
            sections.append(demote_headings(text))
        for suffix in (".png", ".jpg", ".svg"):
            if suffix in group:
                pictures.append(group[suffix])
                sections.append(f"![{_title(stem, STEM_TITLES)}]({folder.name}/{group[suffix].name})")
        if ".json" in group and ".md" not in group:
            rel = f"reports/{folder.name}/{group['.json'].name}"
            data = json.loads(group[".json"].read_text(encoding="utf-8"))
            renderer = JSON_RENDERERS.get(stem)
            sections.append(renderer(data) if renderer else render_json_generic(data, rel))
        if not sections:
            continue
        sources = ", ".join(
            f"`reports/{folder.name}/{path.name}`"
            for path in group.values()
            if path.suffix.lower() in (".md", ".json", ".png", ".jpg", ".svg", ".csv")
        )
        lines += [f"## {_title(stem, STEM_TITLES)}", "", "\n\n".join(sections), "", f"Source: {sources}.", ""]
    return "\n".join(lines), pictures


def report_folders() -> list[Path]:
    if not REPORTS.is_dir():
        return []
    return sorted(
        (path for path in REPORTS.iterdir() if path.is_dir() and any(path.iterdir())),
        key=lambda p: (list(FOLDER_TITLES).index(p.name) if p.name in FOLDER_TITLES else 99, p.name),
    )


def results_index(folders: list[Path]) -> str:
    lines = [
        "# Results",
        "",
        "Every measured number of the project comes from a report under `reports/`, written by the",
        "command named on its page. These pages are generated from those reports at build time.",
        "",
    ]
    lines += [
        f"- [{_title(folder.name, FOLDER_TITLES)}]({folder.name}.md): `reports/{folder.name}/`" for folder in folders
    ]
    eval_json = REPORTS / "model" / "eval.json"
    if eval_json.is_file():
        data = json.loads(eval_json.read_text(encoding="utf-8"))
        step = data.get("checkpoint_step")
        lines += [
            "",
            f"## The shipped model{f' (step {step:,})' if step else ''} at a glance",
            "",
            f"Validation split, {data['samples']} samples; mean SSIM / PSNR (dB) (from `reports/model/eval.json`):",
            "",
        ]
        methods = data.get("methods", {})
        columns = [key[: -len("_psnr")] for key in next(iter(methods.values()), {}) if key.endswith("_psnr")]
        rows = [
            [name]
            + [
                f"{scores[f'{c}_ssim']:.3f} / {scores[f'{c}_psnr']:.2f}"
                if f"{c}_ssim" in scores and f"{c}_psnr" in scores
                else "—"
                for c in columns
            ]
            for name, scores in methods.items()
        ]
        lines.append(
            _table(["method", *(f"{c} map" for c in columns)], rows)
            if rows and columns
            else "(no per-method scores in `reports/model/eval.json`)"
        )
    lines += ["", "Timings and their context (machine, load, commands): [Performance](../performance.md)."]
    return "\n".join(lines) + "\n"


def generated_pages() -> tuple[dict[str, str], dict[str, Path]]:
    """``{docs path: Markdown}`` and ``{docs path: picture file}`` of every generated page."""
    pages = {"reference/cli.md": cli_reference()}
    pictures: dict[str, Path] = {}
    folders = report_folders()
    pages["results/index.md"] = results_index(folders)
    for folder in folders:
        text, shown = report_page(folder)
        pages[f"results/{folder.name}.md"] = text
        pictures.update({f"results/{folder.name}/{path.name}": path for path in shown})
    return pages, pictures


# --- mkdocs hooks -------------------------------------------------------------------------------


def _nav_paths(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return {nav}
    if isinstance(nav, dict):
        return set().union(*(_nav_paths(value) for value in nav.values())) if nav else set()
    if isinstance(nav, list):
        return set().union(*(_nav_paths(item) for item in nav)) if nav else set()
    return set()


def on_config(config: Any) -> Any:
    """Append every hand-written page the nav does not name (e.g. a new guide) to "Guides"."""
    nav = config.get("nav")
    if not nav:
        return config
    named = _nav_paths(nav)
    docs_dir = Path(config["docs_dir"])
    extra = sorted(
        path.relative_to(docs_dir).as_posix()
        for path in docs_dir.rglob("*.md")
        if path.relative_to(docs_dir).as_posix() not in named
    )
    results = [
        {_title(folder.name, FOLDER_TITLES): f"results/{folder.name}.md"}
        for folder in report_folders()
        if f"results/{folder.name}.md" not in named
    ]
    for section, pages in (("Guides", extra), ("Results", results)):
        if not pages:
            continue
        for item in nav:
            if isinstance(item, dict) and section in item:
                item[section].extend(pages)
                break
        else:
            nav.append({section: pages})
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    pages, pictures = generated_pages()
    for uri, text in pages.items():
        files.append(File.generated(config, uri, content=text))
    for uri, path in pictures.items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the generated documentation pages to a folder")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the pages into")
    args = parser.parse_args(argv)
    pages, pictures = generated_pages()
    for uri, text in pages.items():
        target = args.out / uri
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for uri, path in pictures.items():
        target = args.out / uri
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    print(f"wrote {len(pages)} pages and {len(pictures)} pictures under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
