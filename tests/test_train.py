"""Training: the loss goes down, and save/resume reproduces an uninterrupted run exactly."""

import dataclasses

import pytest
import torch

from tests.test_cache import make_images
from training.cache import SynthSettings, synthesize
from training.model import load_model
from training.train import Stage, TrainConfig, config_record, learning_rate_at, load_config, train


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_images(root / "images", 5, size=(64, 64))
    synthesize(root / "images", root / "cache", SynthSettings(64, 64, seed=0, maps_per_image=2), workers=1)
    return root / "cache"


def tiny_config(cache, **changes) -> TrainConfig:
    config = TrainConfig(
        name="tiny", cache=str(cache), patch_size=64, batch_size=4, steps_per_epoch=4,
        stages=(Stage("true_maps", 2, 0.0), Stage("augmented_maps", 1, 0.5)),
        learning_rate=3e-3, l1_weight=1.0, val_samples=2, workers=0, seed=1,
    )
    return dataclasses.replace(config, **changes)


def test_a_few_steps_lower_the_loss(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, stages=(Stage("true_maps", 3, 0.0),), steps_per_epoch=6)
    state = train(config, tmp_path / "run", device="cpu", quiet=True)
    losses = [record["train_loss"] for record in state.history]
    assert losses[-1] < losses[0]
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") == 3


def test_resume_continues_exactly(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache)
    train(config, tmp_path / "straight", device="cpu", quiet=True)

    interrupted = dataclasses.replace(config, stages=config.stages[:1])  # stop after stage 1...
    train(interrupted, tmp_path / "resumed", device="cpu", quiet=True)
    checkpoint = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    checkpoint["metadata"]["config"] = config_record(config)  # ...as if the full run had been cut
    torch.save(checkpoint, tmp_path / "resumed" / "last.pt")
    state = train(config, tmp_path / "resumed", device="cpu", resume=True, quiet=True)

    assert state.epoch == 3 and state.step == 12
    straight, _ = load_model(tmp_path / "straight" / "last.pt")
    resumed, _ = load_model(tmp_path / "resumed" / "last.pt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_existing_run_needs_resume(tiny_cache, tmp_path):
    config = tiny_config(tiny_cache, stages=(Stage("true_maps", 1, 0.0),), steps_per_epoch=1)
    train(config, tmp_path / "run", device="cpu", quiet=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "run", device="cpu", quiet=True)


def test_shipped_configs_load():
    paper = load_config("paper")
    assert paper.batch_size == 8 and paper.learning_rate == 1e-3 and paper.l1_weight == 0
    assert [s.epochs for s in paper.stages] == [32, 32]
    assert [s.augmented_fraction for s in paper.stages] == [0.0, 0.5]
    assert learning_rate_at(paper, 19, 0, 1) == pytest.approx(1e-3)
    assert learning_rate_at(paper, 20, 0, 1) == pytest.approx(1e-4)
    cpu = load_config("cpu")
    assert [s.augmented_fraction for s in cpu.stages] == [0.0, 0.5]  # keeps the two-stage order


def test_bundle_strips_training_state(tiny_cache, tmp_path):
    from training.train import bundle

    config = tiny_config(tiny_cache, stages=(Stage("true_maps", 1, 0.0),), steps_per_epoch=1)
    train(config, tmp_path / "run", device="cpu", quiet=True)
    metadata = bundle(tmp_path / "run" / "last.pt", out=tmp_path / "bundled.pt")
    payload = torch.load(tmp_path / "bundled.pt", weights_only=False)
    assert set(payload) == {"model", "metadata"}
    assert metadata["config"]["name"] == "tiny" and "val_true_psnr" in metadata["validation"]
    assert metadata["data"]["train_images"] + metadata["data"]["val_images"] == 5
    model, _ = load_model(tmp_path / "bundled.pt")
    assert not model.training
