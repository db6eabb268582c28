"""``svbr deblur INPUT_DIR -o OUTPUT_DIR --ray``: a folder on Ray Data actors (``runtime.archive``).

End to end on a local Ray (``num_cpus=2``, two CPU actors) with the bundled model: outputs are
byte-identical to folder mode's, a corrupt image and an image without a blur map are reported in
the summary and skipped, and a rerun leaves finished outputs alone. The actor class itself (a plain
class) is tested without Ray: blur maps estimated, skips, failures.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime import cli
from runtime.archive import SUMMARY_NAME, DeblurActor

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 48, 64
GOOD = 22  # images with blur maps; plus one corrupt file and one image without a map
BACKEND = "onnxruntime-cpu"
TILE = "64"  # one tile per image: tiled output equals full-frame output (tests/test_tiling.py), this keeps it fast

# Ray Data's own DataContext warns about its deprecated fields when the actors are set up.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")


def smooth_image(rng: np.random.Generator) -> np.ndarray:
    """A photo-like 64×48 BGR image: smooth colour fields plus a little noise (the estimator needs edges)."""
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)


def make_archive(root: Path) -> tuple[Path, Path, list[str]]:
    """``root/in`` (GOOD images, ``broken.png``, ``nomap.png``) and ``root/maps``; returns the good names.

    Maps: mostly ``.npy`` radii, every fourth a 16-bit PNG (``--map-scale 0.01``); a few images are JPEGs.
    """
    rng = np.random.default_rng(14)
    images, maps = root / "in", root / "maps"
    images.mkdir(parents=True)
    maps.mkdir()
    names = []
    for k in range(GOOD):
        name = f"photo{k:02d}{'.jpg' if k % 7 == 3 else '.png'}"
        cv2.imwrite(str(images / name), smooth_image(rng))
        radius = rng.integers(0, 600, (HEIGHT, WIDTH))  # 0..5.99 px in 1/100 px, exact in a 16-bit PNG
        if k % 4 == 1:
            cv2.imwrite(str(maps / f"photo{k:02d}.png"), radius.astype(np.uint16))
        else:
            np.save(maps / f"photo{k:02d}.npy", radius.astype(np.float32) * np.float32(0.01))
        names.append(name)
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a PNG" * 20)
    np.save(maps / "broken.npy", np.ones((HEIGHT, WIDTH), np.float32))
    cv2.imwrite(str(images / "nomap.png"), smooth_image(rng))
    return images, maps, names


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'svbr-net[scale]' (in the dev extra)")
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'svbr-net[scale]'")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    yield ray
    ray.shutdown()
    for sig, handler in handlers.items():  # ray.init leaves its SIGTERM handler in the test process
        signal.signal(sig, handler)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The inputs and folder mode's outputs for the good images (folder mode stops at the first bad file)."""
    root = tmp_path_factory.mktemp("archive")
    images, maps, names = make_archive(root)
    clean = root / "clean"
    clean.mkdir()
    for name in names:
        shutil.copy2(images / name, clean / name)
    reference = root / "reference"
    code = cli.main(
        [
            str(clean),
            "--blur-map",
            str(maps),
            "--map-scale",
            "0.01",
            "-o",
            f"{reference}/",
            "--backend",
            BACKEND,
            "--tile",
            TILE,
            "-q",
        ]
    )
    assert code == 0
    return {"images": images, "maps": maps, "names": names, "reference": reference}


def ray_cli(archive: dict, output: Path, capsys) -> tuple[int, dict, str]:
    code = cli.main(
        [
            str(archive["images"]),
            "--blur-map",
            str(archive["maps"]),
            "--map-scale",
            "0.01",
            "-o",
            str(output),
            "--backend",
            BACKEND,
            "--tile",
            TILE,
            "-q",
            "--ray",
        ]
    )
    captured = capsys.readouterr()
    return code, json.loads((output / SUMMARY_NAME).read_text()), captured.out + captured.err


@pytest.mark.slow
def test_outputs_equal_folder_mode_bad_files_reported_rerun_skips(local_ray, archive, tmp_path, capsys):
    output = tmp_path / "sharp"
    code, summary, printed = ray_cli(archive, output, capsys)
    assert code == 1, printed  # some files failed: listed, the rest done
    assert summary["counts"] == {"ok": GOOD, "skipped": 0, "failed": 2}, summary
    assert summary["images"] == GOOD + 2
    assert summary["ray"]["actors"] == 2 and summary["ray"]["actor_kind"] == "CPU"
    failures = {Path(f["input"]).name: f["error"] for f in summary["failures"]}
    assert set(failures) == {"broken.png", "nomap.png"}
    assert "cannot read" in failures["broken.png"] and "broken.png" in failures["broken.png"]
    assert "no blur map for nomap.png" in failures["nomap.png"]
    assert f"{GOOD + 2} images: {GOOD} deblurred, 0 already done, 2 failed" in printed

    written = sorted(p.name for p in output.iterdir())
    assert written == sorted([*archive["names"], SUMMARY_NAME])  # same names, no partial files left
    for name in archive["names"]:
        assert (output / name).read_bytes() == (archive["reference"] / name).read_bytes(), name

    # Rerun with two outputs gone: those two are deblurred again, the rest skipped and left alone.
    removed = archive["names"][:2]
    for name in removed:
        (output / name).unlink()
    kept = {name: (output / name).stat().st_mtime_ns for name in archive["names"][2:]}
    code, summary, _ = ray_cli(archive, output, capsys)
    assert code == 1
    assert summary["counts"] == {"ok": 2, "skipped": GOOD - 2, "failed": 2}, summary
    assert {Path(f["input"]).name for f in summary["failures"]} == {"broken.png", "nomap.png"}
    assert {name: (output / name).stat().st_mtime_ns for name in kept} == kept
    for name in removed:
        assert (output / name).read_bytes() == (archive["reference"] / name).read_bytes(), name


def test_estimated_maps_equal_folder_mode(tmp_path):
    """Without --blur-map each actor estimates the map (the actor class alone, no Ray needed)."""
    rng = np.random.default_rng(3)
    images = tmp_path / "in"
    images.mkdir()
    for k in range(3):
        cv2.imwrite(str(images / f"p{k}.png"), smooth_image(rng))
    reference = tmp_path / "reference"
    assert cli.main([str(images), "-o", f"{reference}/", "--backend", BACKEND, "--tile", TILE, "-q"]) == 0
    actor = DeblurActor(None, BACKEND, int(TILE), None, map_folder=None, map_scale=None, threads=1)
    output = tmp_path / "out"
    output.mkdir()
    batch = {
        "input": np.array([str(p) for p in sorted(images.iterdir())]),
        "output": np.array([str(output / p.name) for p in sorted(images.iterdir())]),
    }
    records = actor(batch)
    assert records["status"] == ["ok"] * 3, records
    for k in range(3):
        assert (output / f"p{k}.png").read_bytes() == (reference / f"p{k}.png").read_bytes()
    again = actor(batch)  # outputs exist now: skipped, not rewritten
    assert again["status"] == ["skipped"] * 3


def test_actor_reports_a_bad_file_and_goes_on(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"garbage")
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), smooth_image(np.random.default_rng(1)))
    maps = tmp_path / "maps"
    maps.mkdir()
    np.save(maps / "bad.npy", np.ones((HEIGHT, WIDTH), np.float32))
    np.save(maps / "good.npy", np.ones((HEIGHT + 1, WIDTH), np.float32))  # wrong size: a failure too
    actor = DeblurActor(None, BACKEND, None, None, map_folder=str(maps), map_scale=None, threads=1)
    records = actor(
        {
            "input": np.array([str(bad), str(good)]),
            "output": np.array([str(tmp_path / "out" / "bad.jpg"), str(tmp_path / "out" / "good.png")]),
        }
    )
    assert records["status"] == ["failed", "failed"]
    assert "cannot read" in records["error"][0]
    assert "blur map" in records["error"][1] and "64×49" in records["error"][1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_ray_needs_a_folder_and_the_ray_options_need_ray(tmp_path, capsys):
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), smooth_image(np.random.default_rng(2)))
    assert cli.main([str(image), "-o", str(tmp_path / "out.png"), "--ray"]) == 2
    assert "--ray deblurs a folder" in capsys.readouterr().err
    assert cli.main([str(tmp_path), "-o", str(tmp_path / "out"), "--ray-actors", "2"]) == 2
    assert "need --ray" in capsys.readouterr().err


def test_without_ray_a_clear_error_and_runtime_never_imports_ray(tmp_path):
    """Ray blocked: ``import runtime`` and folder mode are unaffected, ``--ray`` says what to install."""
    cv2.imwrite(str(tmp_path / "a.png"), smooth_image(np.random.default_rng(4)))
    script = textwrap.dedent(
        f"""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "ray":
                    raise ImportError(f"blocked import of {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import runtime, runtime.cli, runtime.archive
        code = runtime.cli.main([{str(tmp_path)!r}, "-o", {str(tmp_path / "out")!r}, "--ray"])
        assert code == 2, code
        assert not [m for m in sys.modules if m.split(".")[0] in ("ray", "torch")]
        print("NO-RAY-OK")
        """
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
    assert "NO-RAY-OK" in result.stdout
    assert "svbr deblur --ray needs Ray: pip install 'svbr-net[scale]'" in result.stderr


def test_a_ray_run_leaves_the_signal_handlers_as_it_found_them(tmp_path):
    """ray.init installs a SIGTERM handler in the driver; deblur_archive puts the caller's back (own process)."""
    pytest.importorskip("ray.data", reason="Ray Data is not installed: pip install 'svbr-net[scale]'")
    images = tmp_path / "in"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((HEIGHT, WIDTH, 3), 128, np.uint8))
    script = textwrap.dedent(f"""
        import signal
        from pathlib import Path
        from runtime.archive import deblur_archive
        summary = deblur_archive(Path({str(images)!r}), Path({str(tmp_path / "out")!r}), tile=64, actors=1, quiet=True)
        assert summary["counts"]["ok"] == 1, summary
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, signal.getsignal(signal.SIGTERM)
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 0, result.stderr[-2000:]
