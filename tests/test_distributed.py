"""Data-parallel training (torchrun, gloo, 2 CPU processes) makes the steps one process makes.

The runs are float64 (``tests/distributed_worker.py`` says why); each torchrun
start costs a few seconds.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.test_cache import make_images
from tests.test_train import tiny_config
from training.cache import SynthSettings
from training.config import Stage, config_record
from training.distributed import GlobalBatchNorm2d, World, mean_over_ranks, synchronise_batchnorm
from training.model import SVBRNet
from training.photos import OnTheFlyBatches, PhotoSet

REPOSITORY = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).with_name("distributed_worker.py")
#: float64 runs of the same steps in two summation orders. Measured: median 3e-12; at most 2e-8, on the
#: biases of convolutions that feed a BatchNorm, whose true gradient is 0: Adam scales their rounding
#: noise up against its epsilon (1e-8). They do not change the network's function.
WEIGHT_TOLERANCE = 1e-7

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    make_images(folder / "images", 5, size=(64, 64))
    config = tiny_config(
        stages=(Stage("true_maps", 4, 0.0), Stage("estimated_maps", 2, 0.5)),
        val_samples=3,
        val_every_steps=3,
        checkpoint_every_steps=100,
    )
    config_file = folder / "tiny.json"
    config_file.write_text(json.dumps(config_record(config)))
    return folder, config_file


def run_training(processes: int, config_file: Path, images: Path, out: Path, *extra: str) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
    command = [
        *(launcher if processes > 1 else [sys.executable]),
        str(WORKER),
        "--config",
        str(config_file),
        "--images",
        str(images),
        "--out",
        str(out),
        "--device",
        "cpu",
        *extra,
    ]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def max_weight_difference(a: Path, b: Path) -> float:
    """Over the checkpoints' tensors as saved (float64 here; loading a model would round them to float32)."""
    first, second = (torch.load(path, map_location="cpu", weights_only=False)["model"] for path in (a, b))
    assert list(first) == list(second)
    return max(float((first[key].double() - second[key].double()).abs().max()) for key in first)


def log_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_two_processes_make_the_steps_of_one_process_with_the_whole_batch(setup):
    folder, config_file = setup
    run_training(1, config_file, folder / "images", folder / "one")
    run_training(2, config_file, folder / "images", folder / "two")
    assert max_weight_difference(folder / "one" / "resume.pt", folder / "two" / "resume.pt") < WEIGHT_TOLERANCE
    one, two = log_of(folder / "one"), log_of(folder / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == [3, 6]
    for a, b in zip(one, two):  # validation gathered over the ranks scores all samples
        for key in ("train_loss", "val_true_psnr", "val_true_ssim", "val_estimated_psnr", "val_blurry_psnr"):
            assert a[key] == pytest.approx(b[key], abs=2e-4), key
    # Only rank 0 wrote: one log line per validation.
    assert len(two) == 2


def test_an_interrupted_two_process_run_resumes_to_the_same_weights(setup):
    folder, config_file = setup
    if not (folder / "two" / "resume.pt").exists():
        run_training(2, config_file, folder / "images", folder / "two")
    run_training(2, config_file, folder / "images", folder / "interrupted", "--max-steps", "4")
    state = torch.load(folder / "interrupted" / "resume.pt", weights_only=False)["run_state"]
    assert state["step"] == 4
    run_training(2, config_file, folder / "images", folder / "interrupted", "--resume")
    assert max_weight_difference(folder / "two" / "resume.pt", folder / "interrupted" / "resume.pt") < WEIGHT_TOLERANCE


def test_global_batchnorm_is_batchnorm_outside_a_process_group():
    torch.manual_seed(0)
    reference = nn.BatchNorm2d(5)
    global_norm = GlobalBatchNorm2d(5)
    global_norm.load_state_dict(reference.state_dict())
    x = torch.randn(3, 5, 6, 7)
    assert torch.equal(reference(x), global_norm(x))
    assert torch.equal(reference.running_var, global_norm.running_var)


def test_synchronised_model_keeps_its_state_dict():
    model = SVBRNet()
    keys = list(model.state_dict())
    synchronise_batchnorm(model, torch.device("cpu"))
    assert list(model.state_dict()) == keys
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert sum(isinstance(m, GlobalBatchNorm2d) for m in model.modules()) == 71


def test_shards_of_a_batch_are_its_crops_in_order(setup):
    folder, _ = setup
    photos = PhotoSet(folder / "images", "train", SynthSettings(48, 48, 1), lazy=True)
    whole = OnTheFlyBatches(photos, 32, 4, 0.5, seed=3, length=5)[2]
    shards = [OnTheFlyBatches(photos, 32, 4, 0.5, seed=3, length=5, shard=(rank, 2))[2] for rank in range(2)]
    for whole_part, *shard_parts in zip(whole, *shards):
        assert torch.equal(torch.cat(shard_parts), whole_part)
    with pytest.raises(ValueError, match="does not split evenly"):
        OnTheFlyBatches(photos, 32, 4, 0.5, seed=3, length=5, shard=(0, 3))


def test_mean_over_ranks_of_one_process():
    assert mean_over_ranks([1.0, 2.0, 6.0], World()) == 3.0


def test_synchronised_batchnorm_keeps_the_parameter_objects():
    """An optimiser built before the conversion must still update the BatchNorm parameters."""
    model = SVBRNet()
    before = [id(p) for p in model.parameters()]
    synchronise_batchnorm(model, torch.device("cpu"))
    assert [id(p) for p in model.parameters()] == before
