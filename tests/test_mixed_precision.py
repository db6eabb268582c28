"""INT8 with margin: per-layer sensitivity, mixed INT8/FP16 graphs, TensorRT's entropy calibration.

Most tests use a tiny hand-made graph with the network's contract (image, blur_map -> sharp, residual
head) and five weighted layers: a Conv, two Convs sharing one input, a ConvTranspose, and the output Conv.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from conftest import make_tiny_onnx_model
from onnx import numpy_helper
from test_calibration import make_images

from calibration.cli import calibrate, main
from calibration.dataset import SetSettings, build_set
from calibration.graph import FP16_LAYERS_KEY, check_precision_graph, metadata_of
from calibration.int8 import AbsHistogram, Int8Settings, entropy_amax
from calibration.mixed import (
    SsimEvaluator,
    fold_weight_qdq,
    layer_flops,
    restrict_quantization,
    tensorrt_cost_estimate,
    weighted_layers,
)

TILE, HALO = 16, 8  # windows of 32×32 px

LAYERS = ["conv_a", "conv_b", "conv_c", "up", "conv_out"]


def tiny_model() -> onnx.ModelProto:
    """The five-layer stand-in of SVBR-Net (``conftest.make_tiny_onnx_model``, seed 7)."""
    return make_tiny_onnx_model(seed=7)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    fp32 = root / "tiny.onnx"
    onnx.save(tiny_model(), str(fp32))
    images = make_images(root / "images")
    settings = SetSettings("calibration", str(images), split_seed=0, seed=3, size=TILE, halo=HALO)
    int8 = root / "tiny_int8.onnx"
    calibrate(
        fp32,
        int8,
        "int8",
        calibration=settings,
        samples=4,
        int8=Int8Settings("minmax"),
        cache_dir=root / "cache",
        progress=False,
    )
    return {"root": root, "fp32": fp32, "int8": int8, "settings": settings, "images": images, "cache": root / "cache"}


def test_layer_flops_from_the_shapes():
    flops = layer_flops(tiny_model(), 32, 32)
    assert list(flops) == LAYERS
    pixels = 32 * 32
    assert flops["conv_a"] == 2 * pixels * 8 * 4 * 9
    assert flops["conv_c"] == 2 * pixels * 8 * 8
    assert flops["up"] == 2 * 16 * 16 * 8 * 8 * 4  # each of the 16×16 input pixels scatters the 8×8×2×2 weight
    assert flops["conv_out"] == 2 * pixels * 3 * 8 * 9
    estimate = tensorrt_cost_estimate(flops, ["conv_b"])
    share = flops["conv_b"] / sum(flops.values())
    assert estimate["fp16_flop_share"] == pytest.approx(share)
    assert estimate["conv_time_vs_all_int8"] == pytest.approx(1 + share)
    assert estimate["conv_time_vs_all_fp16"] == pytest.approx((1 + share) / 2)


def test_sensitivity_covers_every_layer_and_quantising_nothing_loses_nothing(setup, capsys):
    out = setup["root"] / "sensitivity.json"
    code = main(
        [
            "--precision",
            "int8",
            "--onnx",
            str(setup["fp32"]),
            "--images",
            str(setup["images"]),
            "--samples",
            "4",
            "--tile",
            str(TILE),
            "--halo",
            str(HALO),
            "--seed",
            "3",
            "--method",
            "minmax",
            "--cache",
            str(setup["cache"]),
            "--sensitivity",
            "--eval-samples",
            "3",
            "--threads",
            "1",
            "--json",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "SSIM lost" in printed and "nothing quantized" in printed
    report = json.loads(out.read_text())["sensitivity"]
    rows = report["layers"]
    assert sorted(row["layer"] for row in rows) == sorted(LAYERS)
    assert {row["op_type"] for row in rows} == {"Conv", "ConvTranspose"}
    assert all(np.isfinite(row["ssim"]) and -1 <= row["ssim"] <= 1 for row in rows)
    lost = [row["ssim_lost"] for row in rows]
    assert lost == sorted(lost, reverse=True)
    assert sum(row["flop_share"] for row in rows) == pytest.approx(1.0)
    assert report["none_quantized"] == pytest.approx(1.0, abs=1e-12)  # nothing quantized: the FP32 graph
    assert report["all_quantized"] < 1.0
    assert report["samples"] == 3 and report["window"] == TILE + 2 * HALO
    assert not (setup["root"] / "none.onnx").exists()


def test_quantising_nothing_gives_the_float_graph(setup):
    int8 = onnx.load(str(setup["int8"]))
    none = restrict_quantization(int8, quantized=[])
    ops = {node.op_type for node in none.graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear", "Cast"}
    evaluator = SsimEvaluator(
        onnx.load(str(setup["fp32"])), build_set(setup["settings"], 2, setup["cache"], progress=False), threads=1
    )
    assert evaluator.scores(none) == [1.0, 1.0]
    # One layer quantized: its pairs only; the shared input of conv_b and conv_c keeps one pair.
    one = restrict_quantization(int8, quantized=["conv_b"])
    quantize = [node for node in one.graph.node if node.op_type == "QuantizeLinear"]
    assert len(quantize) == 2  # activation + weight
    assert evaluator.mean_ssim(fold_weight_qdq(one)) < 1.0


def test_weight_folding_is_exact(setup):
    import onnxruntime as ort

    int8 = onnx.load(str(setup["int8"]))
    rng = np.random.default_rng(0)
    feed = {
        "image": rng.random((1, 3, 32, 32), dtype=np.float32),
        "blur_map": rng.random((1, 1, 32, 32), dtype=np.float32),
    }
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the plain operator semantics

    def run(model):
        return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
            None, feed
        )[0]

    folded = fold_weight_qdq(int8)
    assert sum(node.op_type == "QuantizeLinear" for node in folded.graph.node) == 4  # activations only
    np.testing.assert_array_equal(run(folded), run(int8))


def test_mixed_graph_structure(setup):
    import onnxruntime as ort

    int8 = onnx.load(str(setup["int8"]))
    mixed = restrict_quantization(int8, fp16=["conv_b", "conv_c", "up"])
    summary = check_precision_graph(mixed, "int8")
    assert summary.fp16_nodes == 3 and summary.weight_pairs == 2 and summary.weighted_nodes == 5
    assert json.loads(metadata_of(mixed)[FP16_LAYERS_KEY]) == ["conv_b", "conv_c", "up"]
    producer = {out: node for node in mixed.graph.node for out in node.output}
    constants = {init.name: numpy_helper.to_array(init) for init in mixed.graph.initializer}
    nodes = {node.name: node for node in mixed.graph.node}
    for name in ("conv_b", "conv_c", "up"):
        node = nodes[name]
        assert producer[node.input[0]].op_type in ("Cast", "Relu")
        assert all(constants[i].dtype == np.float16 for i in node.input[1:])
        assert not any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in node.input)
    # conv_b and conv_c read one float16 copy of their shared input.
    assert nodes["conv_b"].input[0] == nodes["conv_c"].input[0]
    assert producer[nodes["conv_b"].input[0]].op_type == "Cast"
    # conv_b's ReLU stays in float16 with it; one Cast brings the result back to float32.
    relu_b = nodes["relu_b"]
    assert relu_b.input[0] == nodes["conv_b"].output[0]
    assert [n.op_type for n in mixed.graph.node if relu_b.output[0] in n.input] == ["Cast"]
    for name in ("conv_a", "conv_out"):
        node = nodes[name]
        assert producer[node.input[0]].op_type == "DequantizeLinear"
        assert producer[node.input[1]].op_type == "DequantizeLinear"
    session = ort.InferenceSession(mixed.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(
        None, {"image": np.full((1, 3, 32, 32), 0.5, np.float32), "blur_map": np.zeros((1, 1, 32, 32), np.float32)}
    )[0]
    assert out.dtype == np.float32 and out.shape == (1, 3, 32, 32) and np.isfinite(out).all()
    # The check catches a float16 layer that is still quantized, or a layer the metadata does not know.
    broken = restrict_quantization(int8, fp16=["conv_b"])
    broken.metadata_props.add(key="x", value="y")
    for entry in broken.metadata_props:
        if entry.key == FP16_LAYERS_KEY:
            entry.value = json.dumps(["conv_b", "conv_a"])
    with pytest.raises(ValueError, match="conv_a \\(float16\\)"):
        check_precision_graph(broken, "int8")
    with pytest.raises(ValueError, match="not Conv/ConvTranspose"):
        restrict_quantization(int8, fp16=["relu_a"])


def test_keep_fp16_auto_reaches_the_target(setup):
    out = setup["root"] / "mixed.onnx"
    int8 = onnx.load(str(setup["int8"]))
    evaluator = SsimEvaluator(
        onnx.load(str(setup["fp32"])), build_set(setup["settings"], 3, setup["cache"], progress=False), threads=1
    )
    full = evaluator.mean_ssim(fold_weight_qdq(int8))
    target = 1 - (1 - full) / 4  # needs some layers in float16 (the INT8 graph is 4x further off)
    summary = calibrate(
        setup["fp32"],
        out,
        "int8",
        calibration=setup["settings"],
        samples=4,
        int8=Int8Settings("minmax"),
        cache_dir=setup["cache"],
        progress=False,
        keep_fp16="auto",
        target_ssim=target,
        eval_samples=3,
        threads=1,
    )
    mixed = summary["mixed"]
    assert 1 <= len(mixed["layers"]) < len(LAYERS)
    assert mixed["ssim"] >= target
    saved = onnx.load(str(out))
    assert fp16_layers(saved) == mixed["layers"]
    assert summary["fp16_nodes"] == len(mixed["layers"])
    assert evaluator.mean_ssim(saved) >= target - 1e-3  # the saved graph itself (weights not folded)
    recipe = json.loads(metadata_of(saved)["svbr.precision_recipe"])
    assert recipe["keep_fp16"]["layers"] == mixed["layers"]
    assert 0 < recipe["keep_fp16"]["fp16_flop_share"] < 1
    estimate = mixed["tensorrt_estimate"]
    assert estimate["conv_time_vs_all_int8"] == pytest.approx(1 + estimate["fp16_flop_share"])
    # The most sensitive layers went first.
    ranking = summary["ranking"]["layers"]  # measured here, or stored by the --sensitivity test
    assert mixed["layers"] == [name for name in weighted_layers(saved) if name in ranking[: len(mixed["layers"])]]
    assert mixed["ssim"] == next(h["ssim"] for h in summary["mixed_search"] if h["fp16_layers"] == len(mixed["layers"]))


def fp16_layers(model):
    return json.loads(metadata_of(model).get(FP16_LAYERS_KEY, "[]"))


def test_keep_fp16_by_count_and_by_name(setup, tmp_path):
    by_name = calibrate(
        setup["fp32"],
        tmp_path / "named.onnx",
        "int8",
        calibration=setup["settings"],
        samples=4,
        int8=Int8Settings("minmax"),
        cache_dir=setup["cache"],
        progress=False,
        keep_fp16=["up", "conv_a"],
        eval_samples=2,
        threads=1,
    )
    assert fp16_layers(onnx.load(str(tmp_path / "named.onnx"))) == ["conv_a", "up"]  # graph order
    assert "sensitivity" not in by_name  # names need no ranking
    assert (
        main(
            [
                "--precision",
                "int8",
                "--onnx",
                str(setup["fp32"]),
                "--out",
                str(tmp_path / "two.onnx"),
                "--images",
                str(setup["images"]),
                "--samples",
                "4",
                "--tile",
                str(TILE),
                "--halo",
                str(HALO),
                "--seed",
                "3",
                "--method",
                "minmax",
                "--cache",
                str(setup["cache"]),
                "--keep-fp16",
                "2",
                "--eval-samples",
                "2",
                "--threads",
                "1",
                "-q",
            ]
        )
        == 0
    )
    assert len(fp16_layers(onnx.load(str(tmp_path / "two.onnx")))) == 2
    with pytest.raises(ValueError, match="not Conv/ConvTranspose"):
        calibrate(
            setup["fp32"],
            tmp_path / "x.onnx",
            "int8",
            calibration=setup["settings"],
            samples=4,
            cache_dir=setup["cache"],
            progress=False,
            keep_fp16=["nope"],
            eval_samples=2,
        )
    with pytest.raises(ValueError, match="TensorRT"):
        calibrate(setup["fp32"], tmp_path / "x.onnx", "fp16", keep_fp16="auto")


def test_mixed_graph_with_uint8_io(setup, tmp_path):
    from export.io_wrap import wrap_uint8_io

    source = tmp_path / "u8.onnx"
    onnx.save(wrap_uint8_io(onnx.load(str(setup["fp32"]))), str(source))
    calibrate(
        source,
        tmp_path / "mixed_u8.onnx",
        "int8",
        calibration=setup["settings"],
        samples=4,
        int8=Int8Settings("minmax"),
        cache_dir=setup["cache"],
        progress=False,
        keep_fp16=["conv_b"],
        eval_samples=2,
        threads=1,
    )
    model = onnx.load(str(tmp_path / "mixed_u8.onnx"))
    assert check_precision_graph(model, "int8").fp16_nodes == 1
    assert metadata_of(model)["svbr.io"] == "uint8"


# --- TensorRT's entropy calibration ---------------------------------------------------------------


def reference_entropy_amax(hist, edges, levels=128, start=128):
    """The published algorithm, written out plainly (loops, scipy's KL): an independent computation."""
    from scipy.stats import entropy

    bins = np.array(hist, dtype=np.float64)
    bins[0] = bins[1]
    divergences = []
    for i in range(start, len(bins) + 1):
        space = np.linspace(0, i, num=levels + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins[:i] == 0] = -1
        merged = np.zeros(levels)
        members = np.zeros(levels)
        for index, level in enumerate(digitized):
            if level != -1:
                merged[level] += bins[index]
                members[level] += 1
        candidate = np.zeros(i)
        for index, level in enumerate(digitized):
            if level != -1:
                candidate[index] = merged[level] / members[level]
        reference = bins[:i].copy()
        reference[-1] += bins[i:].sum()
        divergences.append(entropy(reference / reference.sum(), candidate / candidate.sum()))
    divergences = np.array(divergences)
    last_minimum = len(divergences) - 1 - int(np.argmin(divergences[::-1]))
    return float(edges[last_minimum + start])


def test_entropy_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    # A ReLU-like activation: a spike of zeros, a half-normal body, a few far outliers.
    values = np.concatenate([np.zeros(4000), np.abs(rng.normal(0, 1.0, 20000)), [25.0, 30.0, 31.5]])
    hist, edges = np.histogram(values, bins=1024, range=(0, values.max()))
    amax = entropy_amax(hist, edges)
    assert amax == pytest.approx(reference_entropy_amax(hist, edges), rel=0, abs=1e-12)
    assert 2.0 < amax < 15.0  # the outliers are clipped, the body kept
    # A histogram without a tail: nothing worth clipping, the whole range is kept (the last minimum).
    flat = np.full(300, 10)
    assert entropy_amax(flat, np.arange(301.0)) == pytest.approx(reference_entropy_amax(flat, np.arange(301.0)))
    assert entropy_amax(flat, np.arange(301.0)) == 300.0
    # Fewer bins than the first candidate: the full range.
    assert entropy_amax(np.ones(50), np.arange(51.0)) == 50.0


def test_abs_histogram_grows_with_the_same_bin_width():
    histogram = AbsHistogram(bins=100)
    histogram.add(np.zeros(10))  # before the width is known
    histogram.add(np.linspace(-1, 1, 201, dtype=np.float32))
    assert histogram.counts.size == 100 and histogram.width == pytest.approx(0.01)
    histogram.add(np.array([1.5], np.float32))
    assert histogram.counts.size == 150 and histogram.width == pytest.approx(0.01)
    assert histogram.counts.sum() == 10 + 201 + 1 and histogram.counts[0] >= 10
    assert (histogram.minimum, histogram.maximum) == (-1.0, 1.5)
    histogram.add(np.array([100.0], np.float32))  # past MAX_GROWTH × bins: neighbours merge instead
    assert histogram.counts.size <= histogram.MAX_GROWTH * 100 and histogram.counts.sum() == 213


def test_entropy_method_gives_symmetric_scales_from_the_kl_threshold(setup, tmp_path):
    out = tmp_path / "entropy.onnx"
    calibrate(
        setup["fp32"],
        out,
        "int8",
        calibration=setup["settings"],
        samples=3,
        int8=Int8Settings("entropy"),
        cache_dir=setup["cache"],
        progress=False,
    )
    model = onnx.load(str(out))
    check_precision_graph(model, "int8")
    assert json.loads(metadata_of(model)["svbr.precision_recipe"])["method"] == "entropy"
    # The scale of conv_a's input = the entropy amax of its values on the calibration windows / 127.
    from calibration.dataset import read_window_sample

    histogram = AbsHistogram()
    for path in build_set(setup["settings"], 3, setup["cache"], progress=False):  # one window at a time
        histogram.add(np.concatenate(read_window_sample(path).network_inputs(), axis=1))
    constants = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    scale = next(constants[n.input[1]] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    assert float(scale) == pytest.approx(histogram.amax() / 127, rel=1e-5)


def test_entropy_for_the_cpu_target_uses_clipped_asymmetric_ranges(setup, tmp_path):
    out = tmp_path / "entropy_cpu.onnx"
    calibrate(
        setup["fp32"],
        out,
        "int8",
        calibration=setup["settings"],
        samples=2,
        int8=Int8Settings("entropy", target="cpu"),
        cache_dir=setup["cache"],
        progress=False,
    )
    check_precision_graph(onnx.load(str(out)), "int8")  # ONNX Runtime's QLinearConv pattern, uint8 activations


def test_keep_fp16_auto_refuses_an_unreachable_target(setup):
    from calibration.mixed import choose_fp16_layers

    evaluator = SsimEvaluator(
        onnx.load(str(setup["fp32"])), build_set(setup["settings"], 1, setup["cache"], progress=False), threads=1
    )
    int8 = onnx.load(str(setup["int8"]))
    with pytest.raises(ValueError, match="even with all"):
        choose_fp16_layers(int8, LAYERS[:2], evaluator, target=1.5, progress=False)
    chosen, history = choose_fp16_layers(int8, LAYERS, evaluator, target=-1.0, progress=False)
    assert chosen == [] and [h["fp16_layers"] for h in history] == [0]  # INT8 already meets it


def test_cli_default_keeps_the_sensitive_layers_in_float16_for_tensorrt_only():
    import argparse

    from calibration.cli import cli_keep_fp16

    def args(**kw):
        return argparse.Namespace(**{"precision": "int8", "target": "tensorrt", "keep_fp16": None, **kw})

    assert cli_keep_fp16(args()) == "auto"
    assert cli_keep_fp16(args(keep_fp16="none")) is None
    assert cli_keep_fp16(args(keep_fp16="2")) == 2
    assert cli_keep_fp16(args(target="cpu")) is None
    assert cli_keep_fp16(args(precision="fp16")) is None
