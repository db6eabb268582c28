"""``svbr stream``: options, exit codes, --stats, and Ctrl+C (exit 130 with a finalised .mkv)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from stream_helpers import read_video, write_video

from runtime.deblurrer import BUNDLED_MODEL_PATH
from runtime.stream.cli import main

REPO = Path(__file__).resolve().parents[1]
needs_model = pytest.mark.skipif(not BUNDLED_MODEL_PATH.is_file(), reason="bundled model missing")


@needs_model
def test_cli_file_to_file_with_stats(tmp_path, capsys):
    write_video(tmp_path / "in.mkv", 4, size=(32, 24))
    code = main(
        [
            str(tmp_path / "in.mkv"),
            "-o",
            str(tmp_path / "out.mkv"),
            "--blur-map",
            "2.0",
            "--tile",
            "0",
            "--stats",
            str(tmp_path / "s.json"),
        ]
    )
    assert code == 0
    stats = json.loads((tmp_path / "s.json").read_text())
    assert {"captured", "processed", "written", "dropped", "stages", "latency", "peak_queue", "fps"} <= set(stats)
    assert stats["written"] == 4 and stats["dropped"] == 0 and stats["error"] is None
    assert len(read_video(tmp_path / "out.mkv")) == 4
    assert "frames 4 written, 0 dropped" in capsys.readouterr().err


@needs_model
@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["0", "--blur-map", "1"], 2, "ambiguous"),
        (["missing.mp4", "--blur-map", "1"], 2, "not found"),
        (["testsrc://?frames=1", "-o", "out.xyz", "--blur-map", "1"], 2, "unknown output"),
        (["testsrc://?frames=1", "--blur-map", "nope.npy"], 2, "blur map not found"),
        (["testsrc://?frames=1", "--blur-map", "1", "--tile", "-1"], 2, "--tile"),
        (["testsrc://?frames=1", "--blur-map", "-1"], 2, ">= 0"),
        (["testsrc://?frames=1", "--blur-map", "1", "--strength", "3"], 2, "--strength"),
        (["testsrc://?frames=1", "--blur-map", "1", "--max-radius", "2"], 2, "--max-radius"),
        (["/dev/video99", "--blur-map", "1"], 1, "V4L2"),
        (["testsrc://?frames=3&size=32x24", "--blur-map", "seq.npy", "--tile", "0"], 1, "ended at frame 2"),
    ],
)
def test_cli_exit_codes(tmp_path, monkeypatch, capsys, argv, code, message):
    import numpy as np

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "seq.npy", np.ones((2, 24, 32), np.float32))
    assert main(argv) == code
    assert message in capsys.readouterr().err


@needs_model
def test_cli_strength_zero_and_large_radii(tmp_path, capsys):
    frames = write_video(tmp_path / "in.mkv", 2, size=(32, 24))
    code = main(
        [
            str(tmp_path / "in.mkv"),
            "-o",
            str(tmp_path / "out.mkv"),
            "--blur-map",
            "20",
            "--tile",
            "0",
            "--strength",
            "0",
            "--max-radius",
            "24",
        ]
    )
    assert code == 0
    assert all((a == b).all() for a, b in zip(read_video(tmp_path / "out.mkv"), frames))  # strength 0: the input
    assert "clipped" not in capsys.readouterr().err  # 20 px is within --max-radius 24


def test_cli_bad_option_values_exit_2():
    with pytest.raises(SystemExit) as info:
        main(["testsrc://", "--drop", "sometimes"])
    assert info.value.code == 2


@needs_model
def test_cli_sigint_exits_130_with_a_readable_mkv(tmp_path):
    out, stats_path = tmp_path / "live.mkv", tmp_path / "s.json"
    command = [
        sys.executable,
        "-m",
        "svbr_cli",
        "stream",
        "testsrc://?live=1&fps=20&size=32x24",
        "-o",
        str(out),
        "--blur-map",
        "1.5",
        "--tile",
        "0",
        "--stats",
        str(stats_path),
    ]
    # start_new_session: the signal reaches only this process; SIGINT is explicitly handled by the CLI
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,
    )
    lines: list[str] = []
    started = threading.Event()

    def pump():
        for line in proc.stderr:
            lines.append(line)
            if "frames" in line:
                started.set()

    threading.Thread(target=pump, daemon=True).start()
    assert started.wait(60), "".join(lines)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 130, "".join(lines)
    assert time.monotonic() - t0 < 10
    stats = json.loads(stats_path.read_text())
    assert stats["stopped"] and stats["written"] >= 1
    assert len(read_video(out)) == stats["written"]


@needs_model
def test_stream_benchmark_runs_both_modes(tmp_path):
    from benchmarks import stream as bench

    assert (
        bench.main(
            [
                "--backends",
                "onnxruntime-cpu",
                "--frames",
                "2",
                "--size",
                "32x24",
                "--repeats",
                "1",
                "--threads",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "stream.json").read_text())
    assert [(r["mode"], r["frames"]) for r in report["results"]] == [("sequential", 2), ("pipelined", 2)]
    assert "| onnxruntime-cpu | pipelined | 1 | 2 |" in (tmp_path / "stream.md").read_text()
