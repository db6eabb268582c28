"""Training: the loss goes down, and a resumed run (with or without Adam's state) continues the schedule."""

import dataclasses
import json
import math
import os
import signal

import pytest
import torch

from tests.test_cache import make_images
from training.config import (
    REPOSITORY_ROOT,
    Stage,
    TrainConfig,
    best_score,
    config_record,
    learning_rate_at,
    load_config,
    schedule_changes,
)
from training.model import load_model
from training.train import bundle, train
from training.trainer import Run, StopRequest, Trainer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train") / "images"
    make_images(folder, 5, size=(64, 64))
    return folder


def tiny_config(**changes) -> TrainConfig:
    config = TrainConfig(
        name="tiny",
        sample_height=48,
        sample_width=48,
        patch_size=32,
        batch_size=4,
        stages=(Stage("true_maps", 8, 0.0), Stage("estimated_maps", 4, 0.5)),
        lr_schedule="cosine",
        learning_rate=3e-3,
        l1_weight=1.0,
        val_samples=1,
        val_every_steps=4,
        checkpoint_every_steps=2,
        adam_warmup_steps=2,
        workers=0,
        seed=1,
    )
    return dataclasses.replace(config, **changes)


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_few_steps_lower_the_loss(images, tmp_path):
    config = tiny_config(stages=(Stage("true_maps", 24, 0.0),), val_every_steps=8)
    state = train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)
    losses = [record["train_loss"] for record in state.history]
    assert losses[-1] < losses[0]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [record["step"] for record in log] == [8, 16, 24]
    assert {"val_true_psnr", "val_true_ssim", "val_blurry_psnr", "val_blurry_ssim"} <= set(log[0])
    run = Run(tmp_path / "run")
    assert run.resume.is_file() and run.optimizer.is_file() and run.best.is_file()


def test_resume_with_adam_state_continues_exactly(images, tmp_path):
    config = tiny_config()
    straight = train(config, tmp_path / "straight", images_dir=images, device="cpu", quiet=True)
    first = train(config, tmp_path / "resumed", images_dir=images, device="cpu", max_steps=6, quiet=True)
    assert first.step == 6
    resumed = train(config, tmp_path / "resumed", images_dir=images, device="cpu", resume=True, quiet=True)
    assert straight.step == resumed.step == 12 and resumed.resumes == 1
    a, _ = load_model(tmp_path / "straight" / "resume.pt")
    b, _ = load_model(tmp_path / "resumed" / "resume.pt")
    assert same_weights(a, b)


def test_resume_on_a_new_machine_rebuilds_adam_with_a_warm_up(images, tmp_path):
    """Only the committed state (resume.pt) is there: the run goes on, with a learning-rate ramp."""
    config = tiny_config()
    train(config, tmp_path / "run", images_dir=images, device="cpu", max_steps=6, quiet=True)
    Run(tmp_path / "run").optimizer.unlink()
    state = train(config, tmp_path / "run", images_dir=images, device="cpu", resume=True, quiet=True)
    assert state.step == 12
    straight = train(config, tmp_path / "straight", images_dir=images, device="cpu", quiet=True)
    assert state.history[-1]["step"] == straight.history[-1]["step"] == 12
    a, _ = load_model(tmp_path / "run" / "resume.pt")
    b, _ = load_model(tmp_path / "straight" / "resume.pt")
    assert not same_weights(a, b)  # a different path (fresh moments), the same schedule position


def test_existing_run_needs_resume(images, tmp_path):
    config = tiny_config(stages=(Stage("true_maps", 1, 0.0),))
    train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)


def test_resume_refuses_another_schedule(images, tmp_path):
    config = tiny_config(stages=(Stage("true_maps", 4, 0.0),))
    train(config, tmp_path / "run", images_dir=images, device="cpu", max_steps=2, quiet=True)
    with pytest.raises(ValueError, match="learning_rate"):
        train(
            dataclasses.replace(config, learning_rate=1e-2),
            tmp_path / "run",
            images_dir=images,
            device="cpu",
            resume=True,
            quiet=True,
        )


def test_schedule_changes_ignore_prose_and_new_settings():
    saved = config_record(tiny_config())
    current = {**config_record(tiny_config(description="reworded")), "a_new_setting": 1}
    assert schedule_changes(saved, current) == []
    assert schedule_changes(saved, config_record(tiny_config(batch_size=2))) == ["batch_size"]


def test_svbr_train_workers_overrides_the_config_and_a_run_resumes_with_any_count(monkeypatch, tmp_path):
    import training.train as train_module
    from training.trainer import RunState

    seen = {}

    def record(config, out_dir, **options):
        seen["workers"], seen["out_dir"] = config.workers, out_dir
        return RunState()

    monkeypatch.setattr(train_module, "train", record)
    assert train_module.main(["--config", "real3", "--workers", "6", "--max-steps", "1", "-o", str(tmp_path)]) == 0
    assert seen == {"workers": 6, "out_dir": tmp_path}
    assert load_config("real3").workers == 1  # the config itself is untouched
    with pytest.raises(SystemExit):
        train_module.main(["--config", "real3", "--workers", "-1"])
    # The worker count decides only which processes make the crops (batch k is a function of seed and k).
    assert schedule_changes(config_record(tiny_config()), config_record(tiny_config(workers=5))) == []


def test_stop_request_turns_sigterm_into_a_flag():
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_shipped_configs_load():
    paper = load_config("paper")
    assert paper.head == "sigmoid" and paper.l1_weight == 0 and paper.patch_size is None
    assert paper.batch_size == 8 and paper.learning_rate == 1e-3
    assert [s.augmented_fraction for s in paper.stages] == [0.0, 0.5]
    epoch = 2730  # 560 training photos × 39 maps / batch 8
    assert [s.steps for s in paper.stages] == [32 * epoch, 32 * epoch]
    assert learning_rate_at(paper, 20 * epoch - 1) == pytest.approx(1e-3)
    assert learning_rate_at(paper, 20 * epoch) == pytest.approx(1e-4)
    cpu = load_config("cpu")
    assert cpu.head == "residual" and cpu.total_steps >= 20_000
    assert [s.augmented_fraction for s in cpu.stages] == [0.0, 0.5]  # keeps the two-stage order
    assert learning_rate_at(cpu, 0) == pytest.approx(1e-3)
    assert learning_rate_at(cpu, cpu.total_steps) == pytest.approx(1e-5)


def test_bundle_strips_training_state(images, tmp_path):
    config = tiny_config(stages=(Stage("true_maps", 4, 0.0),))
    train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)
    metadata = bundle(Run(tmp_path / "run").best, out=tmp_path / "bundled.pt")
    payload = torch.load(tmp_path / "bundled.pt", weights_only=False)
    assert set(payload) == {"model", "metadata"}
    assert metadata["config"]["name"] == "tiny" and "val_true_psnr" in metadata["validation"]
    assert metadata["head"] == "residual" and metadata["train_images"] + metadata["val_images"] == 5
    model, _ = load_model(tmp_path / "bundled.pt")
    assert not model.training and model.head == "residual"


def test_bundle_of_a_resume_state_takes_its_moving_average_not_the_trained_weights(tmp_path):
    from training.model import SVBRNet

    torch.manual_seed(0)
    trained, average = SVBRNet("residual").state_dict(), SVBRNet("residual").state_dict()
    resume = {
        "model": trained,
        "ema": average,
        "metadata": {"step": 7, "head": "residual"},
        "run_state": {"seconds": 2.0},
    }
    torch.save(resume, tmp_path / "resume.pt")
    metadata = bundle(tmp_path / "resume.pt", out=tmp_path / "bundled.pt")
    assert metadata["step"] == 7 and metadata["seconds"] == 2.0
    bundled = torch.load(tmp_path / "bundled.pt", weights_only=False)["model"]
    name = "map_branch.b1.0.weight"
    assert torch.equal(bundled[name], average[name]) and not torch.equal(bundled[name], trained[name])


def test_learning_curve_from_a_run(images, tmp_path):
    from training.curve import main as curve_main
    from training.curve import read_log, to_markdown

    config = tiny_config(stages=(Stage("true_maps", 4, 0.0), Stage("estimated_maps", 4, 0.5)))
    train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)
    records = read_log(tmp_path / "run")
    assert [r["step"] for r in records] == [4, 8]
    table = to_markdown(records)
    # Header, rule, two validations and the blurry input's own level.
    assert table.count("\n") == 5 and "| 8 | estimated_maps |" in table and "| blurry input |" in table
    assert curve_main(["--run", str(tmp_path / "run"), "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "learning_curve.png").stat().st_size > 1000


def test_learning_curve_chains_a_run_fine_tuned_from_a_step_of_another(tmp_path):
    from training.curve import chain, main, parse_run

    def write_log(name, steps):
        folder = tmp_path / name
        folder.mkdir()
        lines = [json.dumps({"step": s, "stage": "s", "lr": 1e-4, "val_true_psnr": s / 1000}) for s in steps]
        (folder / "log.jsonl").write_text("\n".join(lines) + "\n")
        return folder

    first, second = write_log("real", [500, 1000, 1500, 2000]), write_log("real2", [0, 500, 1000])
    assert parse_run(f"{second}@1000") == (second, 1000) and parse_run(str(first)) == (first, None)
    records = chain([(first, None), (second, 1000)])
    # real up to the branch point, then real2 after it (its step 0 is the branch point scored again).
    assert [r["step"] for r in records] == [500, 1000, 1500, 2000]
    assert [r["stage"] for r in records] == ["real: s", "real: s", "real2: s", "real2: s"]
    assert [r["val_true_psnr"] for r in records] == [0.5, 1.0, 0.5, 1.0]
    # A third run names a step of the second in the second's own numbering; the offsets add up.
    third = write_log("real3", [0, 500])
    records = chain([(first, None), (second, 500), (third, 1000)])
    assert [r["step"] for r in records] == [500, 1000, 1500, 2000]
    assert [r["stage"] for r in records] == ["real: s", "real2: s", "real2: s", "real3: s"]
    with pytest.raises(ValueError, match="needs DIR@STEP"):
        chain([(first, None), (second, None)])
    with pytest.raises(ValueError, match="the step this run started from"):
        parse_run(f"{second}@latest")
    assert main(["--run", str(first), "--run", f"{second}@x", "-o", str(tmp_path / "out")]) == 2


def test_learning_curve_shows_the_trained_weights_beside_their_average():
    from training.curve import to_markdown

    records = [
        {"step": 500, "stage": "s", "lr": 1e-3, "val_true_psnr": 27.0, "val_true_ssim": 0.85},
        {
            "step": 1000,
            "stage": "s",
            "lr": 1e-3,
            "val_true_psnr": 28.0,
            "val_true_ssim": 0.88,
            "val_trained_true_psnr": 27.5,
            "val_trained_true_ssim": 0.87,
        },
    ]
    table = to_markdown(records)
    assert "trained weights (not averaged)" in table.splitlines()[0]
    assert "| 500 | s | 1.0e-03 | 27.00 / 0.850 | (the same) |" in table
    assert "| 1,000 | s | 1.0e-03 | 28.00 / 0.880 | 27.50 / 0.870 |" in table


def test_weight_average_follows_the_formula():
    from training.averaging import WeightAverage

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    average = WeightAverage(model, decay=0.75)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model[1].num_batches_tracked += 3
    average.update(model)
    for key, value in average.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * start[key] + 0.25 * model.state_dict()[key])
        else:
            assert torch.equal(value, model.state_dict()[key])
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(model, decay=1.0)


def test_a_run_with_a_weight_average_validates_keeps_and_resumes_it(images, tmp_path):
    config = tiny_config(ema_decay=0.5)
    straight = train(config, tmp_path / "straight", images_dir=images, device="cpu", quiet=True)
    assert {"val_trained_true_psnr", "val_trained_true_ssim"} <= set(straight.history[-1])
    saved = torch.load(tmp_path / "straight" / "resume.pt", weights_only=False)
    trained, averaged = saved["model"], saved["ema"]
    assert list(trained) == list(averaged)
    assert not all(torch.equal(trained[k], averaged[k]) for k in trained)
    assert saved["metadata"]["weights"] == "moving average, decay 0.5"
    best = torch.load(tmp_path / "straight" / "best.pt", weights_only=False)["model"]
    validated = {record["step"]: record["val_true_psnr"] for record in straight.history}
    assert max(validated.values()) == straight.best_score
    if max(validated, key=validated.get) == straight.step:  # the best is the last validation: the average itself
        assert all(torch.equal(best[k], averaged[k]) for k in best)
    # Interrupted and resumed (with Adam's state): the same average as the uninterrupted run.
    train(config, tmp_path / "resumed", images_dir=images, device="cpu", max_steps=6, quiet=True)
    train(config, tmp_path / "resumed", images_dir=images, device="cpu", resume=True, quiet=True)
    again = torch.load(tmp_path / "resumed" / "resume.pt", weights_only=False)["ema"]
    assert all(torch.equal(averaged[k], again[k]) for k in averaged)


def test_a_weight_average_can_start_in_a_running_schedule(images, tmp_path):
    """A run started without an average gains one on resume (from the current weights), noted in the metadata."""
    train(tiny_config(), tmp_path / "run", images_dir=images, device="cpu", max_steps=6, quiet=True)
    state = train(
        tiny_config(ema_decay=0.5), tmp_path / "run", images_dir=images, device="cpu", resume=True, quiet=True
    )
    assert state.step == 12
    saved = torch.load(tmp_path / "run" / "resume.pt", weights_only=False)
    assert "ema" in saved
    assert "weight average (decay 0.5) started at step 6" in saved["metadata"]["notes"]


def test_the_real_config_fine_tunes_the_shipped_weights_on_camera_data():

    real = load_config("real")
    assert real.pipeline == "camera" and real.init_weights == "training/weights/svbrnet_cpu_step5500.pt"
    assert (REPOSITORY_ROOT / real.init_weights).is_file()
    assert real.best_metric == "mean_psnr" and real.val_runtime_estimate
    assert set(real.val_degradations) == {"noise2", "noise5", "jpeg80"}
    assert load_config("paper").pipeline == "paper" and load_config("cpu").pipeline == "paper"


def test_the_real2_config_restarts_from_the_weights_real_shipped():
    real, real2 = load_config("real"), load_config("real2")
    assert real2.init_weights == "training/weights/svbrnet_real_step14000.pt"
    initial = torch.load(REPOSITORY_ROOT / real2.init_weights, map_location="cpu", weights_only=False)
    assert initial["metadata"]["step"] == 14_000 and initial["metadata"]["config"]["name"] == "real"
    # The same data, validation and ranking as real's last steps; only the schedule restarts.
    assert real2.pipeline == real.pipeline and real2.val_degradations == real.val_degradations
    assert real2.best_metric == real.best_metric and real2.val_pixel4 and real2.val_runtime_estimate
    assert real2.camera_overrides["jpeg_probability"] == real.camera_overrides["jpeg_probability"]
    assert learning_rate_at(real2, 0) == pytest.approx(real2.learning_rate)
    assert learning_rate_at(real2, real2.total_steps) == pytest.approx(real2.min_learning_rate)


def assert_starts_from_the_last_moving_average(config, earlier: str, step: int) -> None:
    """``config`` starts from the weights file of step ``step`` of run ``earlier``: the moving average its
    committed resume state ends with, not its trained weights."""
    assert config.init_weights == f"training/weights/svbrnet_{earlier}_step{step}.pt"
    initial = torch.load(REPOSITORY_ROOT / config.init_weights, map_location="cpu", weights_only=False)
    assert initial["metadata"]["step"] == step and initial["metadata"]["config"]["name"] == earlier
    resume = torch.load(REPOSITORY_ROOT / f"training/runs/{earlier}/resume.pt", map_location="cpu", weights_only=False)
    for name, tensor in resume["ema"].items():
        assert torch.equal(initial["model"][name], tensor), name


def changed_camera_overrides(earlier, later) -> set[str]:
    return {k for k in earlier.camera_overrides if earlier.camera_overrides[k] != later.camera_overrides[k]}


def test_the_real3_config_restarts_from_the_moving_average_of_real2s_last_step():
    real2, real3 = load_config("real2"), load_config("real3")
    assert_starts_from_the_last_moving_average(real3, "real2", 6_000)
    assert real3.pipeline == real2.pipeline and real3.camera_overrides == real2.camera_overrides
    assert real3.val_degradations == real2.val_degradations and real3.best_metric == real2.best_metric
    assert learning_rate_at(real3, real3.total_steps) == pytest.approx(real3.min_learning_rate)


def test_the_real4_config_restarts_from_real3s_last_moving_average_with_more_jpeg():
    real3, real4 = load_config("real3"), load_config("real4")
    assert_starts_from_the_last_moving_average(real4, "real3", 8_000)
    # The one change of data: JPEG on more of the camera crops, same qualities; the rest of the mix as real3.
    assert changed_camera_overrides(real3, real4) == {"jpeg_probability"}
    assert real4.camera_overrides["jpeg_probability"] > real3.camera_overrides["jpeg_probability"]
    assert real4.val_degradations == real3.val_degradations and real4.best_metric == real3.best_metric


def test_the_real5_config_restarts_from_real4s_last_moving_average_with_more_paper_crops():
    real4, real5 = load_config("real4"), load_config("real5")
    assert_starts_from_the_last_moving_average(real5, "real4", 8_000)
    # The one change of data: more of the paper's clean exact-disk crops; the camera mix as real4.
    assert changed_camera_overrides(real4, real5) == {"paper_probability"}
    assert real5.camera_overrides["paper_probability"] > real4.camera_overrides["paper_probability"]
    assert real5.val_degradations == real4.val_degradations and real5.best_metric == real4.best_metric
    assert learning_rate_at(real5, real5.total_steps) == pytest.approx(real5.min_learning_rate)


def test_the_real6_config_continues_the_shipped_real5_on_the_same_data():
    real5, real6 = load_config("real5"), load_config("real6")
    assert_starts_from_the_last_moving_average(real6, "real5", 3_500)
    # Only the schedule restarts: the data mix, validation and ranking are real5's.
    assert changed_camera_overrides(real5, real6) == set() and real6.pipeline == real5.pipeline
    assert [s.augmented_fraction for s in real6.stages] == [s.augmented_fraction for s in real5.stages]
    assert real6.val_degradations == real5.val_degradations and real6.best_metric == real5.best_metric
    assert learning_rate_at(real6, real6.total_steps) == pytest.approx(real6.min_learning_rate)


def test_best_score_is_the_mean_over_validation_sets_without_baselines():

    record = {
        "val_true_psnr": 30.0,
        "val_noise5_psnr": 26.0,
        "val_blurry_psnr": 10.0,
        "val_blurry_noise5_psnr": 5.0,
        "val_trained_true_psnr": 1.0,
        "val_true_ssim": 0.9,
    }
    assert best_score(record, "mean_psnr") == pytest.approx(28.0)
    assert best_score(record, "val_true_psnr") == 30.0


def test_a_fine_tune_starts_from_its_init_weights_and_validates_them_first(images, tmp_path):
    from training.model import SVBRNet, save_checkpoint

    start = SVBRNet("residual")
    torch.nn.init.normal_(start.image_branch.out[0].weight, std=0.01)
    start_path = tmp_path / "start.pt"
    save_checkpoint(start_path, start, {"step": 5})
    config = tiny_config(
        stages=(Stage("camera", 4, 0.5),),
        init_weights=str(start_path),
        pipeline="camera",
        val_degradations=("noise2",),
        val_runtime_estimate=True,
        best_metric="mean_psnr",
        val_every_steps=4,
    )
    state = train(config, tmp_path / "run", images_dir=images, device="cpu", quiet=True)
    assert [record["step"] for record in state.history] == [0, 4]
    first = state.history[0]
    assert {"val_runtime_psnr", "val_noise2_psnr", "val_blurry_noise2_psnr"} <= set(first)
    assert first["val_blurry_noise2_psnr"] < first["val_blurry_psnr"]  # noise lowers the input's own score
    checkpoint = torch.load(tmp_path / "run" / "resume.pt", weights_only=False)
    assert any("fine-tuned from" in note for note in checkpoint["metadata"]["notes"])


def test_camera_overrides_are_checked_resumable_and_noted(images, tmp_path):
    from training.degradations import camera_ranges

    assert camera_ranges({"noise_weights": [0.5, 0.3, 0.2]}).noise_weights == (0.5, 0.3, 0.2)
    with pytest.raises(ValueError, match="unknown camera_overrides"):
        camera_ranges({"fog": 1})
    with pytest.raises(ValueError, match="sum to 1"):
        camera_ranges({"noise_weights": [0.5, 0.5, 0.5]})
    config = tiny_config(stages=(Stage("camera", 6, 0.0),), pipeline="camera", val_every_steps=100)
    train(config, tmp_path / "run", images_dir=images, device="cpu", max_steps=3, quiet=True)
    changed = dataclasses.replace(config, camera_overrides={"paper_probability": 0.5})
    state = train(changed, tmp_path / "run", images_dir=images, device="cpu", resume=True, quiet=True)
    assert state.step == 6
    notes = torch.load(tmp_path / "run" / "resume.pt", weights_only=False)["metadata"]["notes"]
    assert 'from step 3: camera_overrides = {"paper_probability": 0.5}' in notes


# --- the Trainer's steps, one at a time (train() is Trainer(...).run()) ---------------------------------------------


def a_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A 4×3×32×32 image and target and a 4×1×32×32 map, in the network's ranges."""
    generator = torch.Generator().manual_seed(seed)
    sharp = torch.rand(4, 3, 32, 32, generator=generator)
    image = torch.nn.functional.avg_pool2d(sharp, 3, stride=1, padding=1)
    blur_map = torch.full((4, 1, 32, 32), 0.3)
    return image, blur_map, sharp


def test_trainer_step_updates_the_weights_the_average_and_the_step(images, tmp_path):
    trainer = Trainer(tiny_config(ema_decay=0.5), tmp_path / "run", images, "cpu", quiet=True)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    average_before = {k: v.clone() for k, v in trainer.scored.state_dict().items()}
    losses = [trainer.train_step(*a_batch(), lr=3e-3) for _ in range(8)]
    assert trainer.state.step == 8
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]  # the same batch over and over is learnt
    assert trainer.optimizer.param_groups[0]["lr"] == 3e-3
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    average = trainer.scored.state_dict()
    moved = [k for k in average if average[k].is_floating_point() and not torch.equal(average_before[k], average[k])]
    assert moved and any(not torch.equal(average[k], after[k]) for k in moved)  # it lags the trained weights


def test_trainer_learning_rate_ramps_up_only_while_adams_moments_rebuild(images, tmp_path):
    config = tiny_config()  # adam_warmup_steps = 2
    fresh = Trainer(config, tmp_path / "run", images, "cpu", quiet=True)
    assert [fresh.learning_rate(s) for s in range(12)] == [learning_rate_at(config, s) for s in range(12)]
    fresh.run(max_steps=6)
    Run(tmp_path / "run").optimizer.unlink()  # a new machine: only resume.pt came with the repository
    resumed = Trainer(config, tmp_path / "run", images, "cpu", resume=True, quiet=True)
    assert resumed.state.step == 6 and resumed.warmup_until == 8
    assert resumed.learning_rate(6) == pytest.approx(learning_rate_at(config, 6) / 2)
    assert resumed.learning_rate(7) == pytest.approx(learning_rate_at(config, 7))
    assert resumed.learning_rate(8) == learning_rate_at(config, 8)


def test_trainer_checkpoint_restores_weights_average_adam_and_step(images, tmp_path):
    config = tiny_config(ema_decay=0.5)
    trainer = Trainer(config, tmp_path / "run", images, "cpu", quiet=True)
    for seed in range(3):
        trainer.train_step(*a_batch(seed), lr=1e-3)
    trainer.checkpoint()
    restored = Trainer(config, tmp_path / "run", images, "cpu", resume=True, quiet=True)
    assert restored.state.step == 3 and restored.state.resumes == 1 and restored.warmup_until == 0
    assert same_weights(restored.model, trainer.model) and same_weights(restored.scored, trainer.scored)
    # Adam's state came back: the next step is the one the first trainer takes
    assert trainer.train_step(*a_batch(9), lr=1e-3) == restored.train_step(*a_batch(9), lr=1e-3)
    assert same_weights(restored.model, trainer.model)


def test_trainer_validate_logs_the_record_and_keeps_the_best(images, tmp_path):
    config = tiny_config()
    trainer = Trainer(config, tmp_path / "run", images, "cpu", quiet=True)
    record = trainer.validate(config.stages[0], 1e-3, [0.5, 0.3])
    assert record["train_loss"] == pytest.approx(0.4) and record["step"] == 0
    assert {"val_true_psnr", "val_estimated_psnr", "val_blurry_psnr"} <= set(record)
    assert trainer.state.best_score == best_score(record, config.best_metric)
    run = Run(tmp_path / "run")
    assert [json.loads(line)["step"] for line in run.log.read_text().splitlines()] == [0]
    assert run.best.is_file() and not run.resume.exists()  # validation keeps best.pt; checkpoints are separate
    best_written = run.best.stat().st_mtime_ns
    trainer.state.best_score = float("inf")  # nothing can beat it: best.pt stays as it is
    trainer.validate(config.stages[0], 1e-3, [])
    assert run.best.stat().st_mtime_ns == best_written and len(run.log.read_text().splitlines()) == 2
