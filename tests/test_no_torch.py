"""The runtime works where torch cannot be imported, and never imports training/export/calibration."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = ("torch", "training", "export", "calibration")

#: Runs in a fresh interpreter: a meta-path finder makes every forbidden import fail.
SCRIPT = textwrap.dedent(
    """
    import sys

    FORBIDDEN = {forbidden!r}

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"blocked import of {{name}}")
            return None

    sys.meta_path.insert(0, Block())

    import numpy as np
    import runtime, runtime.cli, runtime.demo, runtime.tiling, runtime.metrics
    import runtime.backends.compare, runtime.backends.onnxruntime_backend
    import runtime.stream, runtime.stream.cli
    import runtime.estimate, runtime.estimate_cli, runtime.domain_transform
    from runtime import Deblurrer

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 21, 3), dtype=np.uint8)
    sharp = Deblurrer({model!r}, tile=16).deblur(image, np.full((30, 21), 2.5, np.float32))
    assert sharp.shape == image.shape and sharp.dtype == np.uint8
    sharp, estimated = Deblurrer({model!r}, tile=16).deblur(image, return_map=True)  # the map estimated
    assert sharp.shape == image.shape and estimated.shape == image.shape[:2]

    np.save({map_path!r}, np.full((30, 21), 1.0, np.float32))
    import cv2
    cv2.imwrite({image_path!r}, image)
    code = runtime.cli.main([{image_path!r}, "--blur-map", {map_path!r}, "-o", {out_path!r},
                             "--model", {model!r}, "-q"])
    assert code == 0, code
    assert runtime.demo.main(["--model", {model!r}, "-o", {demo_path!r}, "--size", "32x32"]) == 0
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    assert not loaded, loaded
    print("RUNTIME-WITHOUT-TORCH-OK")
    """
)


def test_runtime_runs_with_torch_blocked(random_onnx_model, tmp_path):
    script = SCRIPT.format(
        forbidden=FORBIDDEN,
        model=str(random_onnx_model),
        map_path=str(tmp_path / "m.npy"),
        image_path=str(tmp_path / "i.png"),
        out_path=str(tmp_path / "o.png"),
        demo_path=str(tmp_path / "d.png"),
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RUNTIME-WITHOUT-TORCH-OK" in result.stdout
    assert (tmp_path / "o.png").is_file() and (tmp_path / "d.png").is_file()


#: The one sanctioned exception: the torch-cuda backend runs PyTorch checkpoints, importing
#: torch and the model definition inside its constructor (never at import time).
ALLOWED_LAZY_IMPORTS = {"runtime/backends/torch_backend.py": {"torch", "training"}}


def test_no_runtime_module_imports_torch_or_the_training_side():
    """Static check, so imports inside functions that the run above does not reach count too."""
    offenders = []
    for path in sorted((REPO / "runtime").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            relative = path.relative_to(REPO).as_posix()
            allowed = ALLOWED_LAZY_IMPORTS.get(relative, set())
            offenders += [
                f"{relative}: {n}" for n in names if n.split(".")[0] in FORBIDDEN and n.split(".")[0] not in allowed
            ]
    assert not offenders, offenders
