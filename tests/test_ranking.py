"""svbr calibrate --precision int8 reuses a stored per-layer sensitivity ranking keyed by the weights' hash.

On the tiny five-layer stand-in of SVBR-Net (``conftest.tiny_onnx_model``): the first run measures the
ranking and stores it beside the model and in the cache; the next run reuses it (no sweep); other weights,
or ``--sensitivity``, measure it again; a uint8-I/O export of the same weights finds it in the cache.
"""

from __future__ import annotations

import json

import onnx
import pytest
from conftest import make_tiny_onnx_model
from test_calibration import make_images

import calibration.cli as calibration_cli
from calibration.cli import calibrate, main
from calibration.dataset import SetSettings
from calibration.int8 import Int8Settings
from calibration.ranking import (
    FORMAT,
    bundled_ranking_path,
    cache_path,
    load_ranking,
    path_beside,
    weights_sha256,
)

TILE, HALO = 16, 8  # windows of 32×32 px
LAYERS = {"conv_a", "conv_b", "conv_c", "up", "conv_out"}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return make_images(tmp_path_factory.mktemp("ranking_images"))


@pytest.fixture
def counted_sweeps(monkeypatch):
    """Counts the sensitivity sweeps that calibrate() runs."""
    calls = []
    real = calibration_cli.layer_sensitivity

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration_cli, "layer_sensitivity", counting)
    return calls


def run(model, out, images, cache, **kwargs):
    settings = SetSettings("calibration", str(images), split_seed=0, seed=3, size=TILE, halo=HALO)
    return calibrate(
        model,
        out,
        "int8",
        calibration=settings,
        samples=3,
        int8=Int8Settings("minmax"),
        cache_dir=cache,
        progress=False,
        keep_fp16=kwargs.pop("keep_fp16", "auto"),
        target_ssim=kwargs.pop("target_ssim", 0.999),
        eval_samples=2,
        threads=1,
        **kwargs,
    )


def test_weights_hash_ignores_metadata_and_storage_but_not_values():
    model = make_tiny_onnx_model(seed=7)
    sha = weights_sha256(model)
    assert len(sha) == 64 and sha == weights_sha256(make_tiny_onnx_model(seed=7))
    model.metadata_props.add(key="svbr.note", value="metadata is not weights")
    assert weights_sha256(model) == sha
    assert weights_sha256(make_tiny_onnx_model(seed=8)) != sha


def test_first_run_measures_and_stores_the_next_reuses(tiny_onnx_model, images, tmp_path, counted_sweeps):
    cache = tmp_path / "cache"
    first = run(tiny_onnx_model, tmp_path / "a.onnx", images, cache)
    assert len(counted_sweeps) == 1 and first["ranking"]["reused"] is False and "sensitivity" in first
    sha = weights_sha256(onnx.load(str(tiny_onnx_model)))
    beside, cached = path_beside(tiny_onnx_model), cache_path(cache, sha)
    assert beside.name == "tiny_int8_ranking.json" and beside.is_file() and cached.is_file()
    stored = json.loads(beside.read_text())
    assert stored["format"] == FORMAT and stored["weights_sha256"] == sha
    assert set(stored["ranking"]) == LAYERS and stored["ranking"] == first["ranking"]["layers"]
    assert [row["layer"] for row in stored["layers"]] == stored["ranking"]

    second = run(tiny_onnx_model, tmp_path / "b.onnx", images, cache)
    assert len(counted_sweeps) == 1  # no second sweep
    assert second["ranking"] == {
        "layers": first["ranking"]["layers"],
        "reused": True,
        "source": str(beside),
        "weights_sha256": sha,
    }
    assert "sensitivity" not in second
    assert second["mixed"]["layers"] == first["mixed"]["layers"]  # the same graph, from the same ranking
    assert second["mixed"]["ssim"] >= 0.999 or second["mixed"]["layers"]  # the target is still searched

    by_count = run(tiny_onnx_model, tmp_path / "c.onnx", images, cache, keep_fp16=2)
    assert len(counted_sweeps) == 1 and by_count["ranking"]["reused"] is True
    assert set(by_count["mixed"]["layers"]) == set(first["ranking"]["layers"][:2])


def test_sensitivity_flag_and_other_weights_measure_again(tiny_onnx_model, images, tmp_path, counted_sweeps, capsys):
    cache = tmp_path / "cache"
    run(tiny_onnx_model, tmp_path / "a.onnx", images, cache)
    assert len(counted_sweeps) == 1
    run(tiny_onnx_model, tmp_path / "b.onnx", images, cache, sensitivity=True)
    assert len(counted_sweeps) == 2  # --sensitivity always measures

    onnx.save(make_tiny_onnx_model(seed=11), str(tiny_onnx_model))  # new weights under the same name
    summary = run(tiny_onnx_model, tmp_path / "c.onnx", images, cache)
    assert len(counted_sweeps) == 3 and summary["ranking"]["reused"] is False
    new_sha = weights_sha256(onnx.load(str(tiny_onnx_model)))
    assert json.loads(path_beside(tiny_onnx_model).read_text())["weights_sha256"] == new_sha

    # The CLI says which stage it is in, one line each, on stderr (also in a pipe).
    code = main(
        [
            "--precision",
            "int8",
            "--onnx",
            str(tiny_onnx_model),
            "--out",
            str(tmp_path / "d.onnx"),
            "--images",
            str(images),
            "--samples",
            "3",
            "--tile",
            str(TILE),
            "--halo",
            str(HALO),
            "--seed",
            "3",
            "--method",
            "minmax",
            "--cache",
            str(cache),
            "--eval-samples",
            "2",
            "--threads",
            "1",
        ]
    )
    assert code == 0 and len(counted_sweeps) == 3
    err = capsys.readouterr().err
    for stage in (
        "calibration set:",
        "quantizing",
        "reusing the stored sensitivity ranking",
        "choosing the float16 layers",
        "done in",
    ):
        assert f"] {stage}" in err


def test_uint8_io_export_of_the_same_weights_reuses_the_cached_ranking(
    tiny_onnx_model, images, tmp_path, counted_sweeps
):
    from export.io_wrap import wrap_uint8_io

    cache = tmp_path / "cache"
    run(tiny_onnx_model, tmp_path / "a.onnx", images, cache)
    elsewhere = tmp_path / "other" / "tiny_u8.onnx"
    elsewhere.parent.mkdir()
    onnx.save(wrap_uint8_io(onnx.load(str(tiny_onnx_model))), str(elsewhere))
    summary = run(elsewhere, tmp_path / "u8.onnx", images, cache)
    assert len(counted_sweeps) == 1 and summary["ranking"]["reused"] is True
    assert summary["ranking"]["source"] == str(cache_path(cache, summary["ranking"]["weights_sha256"]))


def test_a_ranking_for_another_graph_is_not_used(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"format": FORMAT, "weights_sha256": "ab", "ranking": ["conv_a", "conv_b"]}))
    assert load_ranking([path], "ab", ["conv_a", "conv_b"]).layers == ["conv_a", "conv_b"]
    assert load_ranking([path], "ab", ["conv_a", "conv_b", "conv_c"]) is None  # other layers
    assert load_ranking([path], "cd", ["conv_a", "conv_b"]) is None  # other weights
    assert load_ranking([tmp_path / "missing.json"], "ab", ["conv_a"]) is None


def test_the_bundled_model_ships_its_ranking():
    """The bundled model's ranking is in the package, for the weights it holds now."""
    from calibration.mixed import weighted_layers
    from runtime.deblurrer import BUNDLED_MODEL_PATH

    path = bundled_ranking_path()
    assert path == BUNDLED_MODEL_PATH.with_name("svbrnet_int8_ranking.json")
    model = onnx.load(str(BUNDLED_MODEL_PATH))
    layers = weighted_layers(model)
    stored = load_ranking([path], weights_sha256(model), layers)
    assert stored is not None, (
        f"{path} is missing or was measured on other weights: rerun `svbr calibrate "
        "--precision int8 --onnx runtime/models/svbrnet.onnx --images DIR --sensitivity`"
    )
    assert len(stored.layers) == len(layers) == 76
