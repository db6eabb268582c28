"""The training loop of ``svbr train`` (:mod:`training.train`): :class:`Trainer` and what it is made of.

A run directory holds::

    OUT/resume.pt      weights, step, best validation so far: small, meant to be committed
    OUT/optimizer.pt   Adam's moments (3× the weights): local only
    OUT/log.jsonl      one line per validation
    OUT/best.pt        the weights of the best validation so far

With ``ema_decay`` set, the weights validated, kept as ``best.pt`` and bundled
are the moving average of the trained weights (``training.averaging``); the
average is saved in ``resume.pt`` beside them. Without ``optimizer.pt`` (a brand-new
machine) Adam's moments are rebuilt while the learning rate ramps up again
over ``adam_warmup_steps``. The run checkpoints every ``checkpoint_every_steps``
and on SIGTERM/SIGINT.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from training.augment import runtime_estimate
from training.averaging import WeightAverage
from training.cache import SynthSettings
from training.config import (
    DATA_CHANGES,
    DEFAULT_IMAGES,
    REPOSITORY_ROOT,
    Stage,
    TrainConfig,
    best_score,
    config_record,
    learning_rate_at,
    schedule_changes,
)
from training.degradations import camera_ranges
from training.distributed import World, any_rank, current_world, mean_over_ranks, synchronise_batchnorm
from training.losses import deblur_loss, psnr_per_image, ssim_per_image
from training.model import SVBRNet, load_checkpoint, save_checkpoint
from training.photos import Crop, OnTheFlyBatches, PhotoSet, stack, validation_crops


def pick_device(requested: str, world: World = World()) -> torch.device:
    """The device for ``--device`` (``auto``: CUDA when present); each rank of a CUDA run gets its local GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device")
    return torch.device("cuda", world.local_rank) if requested == "cuda" else torch.device(requested)


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has native bfloat16 kernels here (AVX-512 BF16 / AMX).

    Without them bfloat16 autocast is emulated: measured 10× slower than float32
    on an AVX2-only EPYC, so ``cpu_bf16`` is then ignored.
    """
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@torch.no_grad()
def evaluate(
    model: SVBRNet | None, crops: list[Crop], device: torch.device, channels_last: bool = False, world: World = World()
) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of the network on whole validation samples (``None``: of the blurry inputs).

    In a distributed run each rank passes its share of the samples and gets the mean over all of them.
    """
    if model is not None:
        model.eval()
    psnrs, ssims = [], []
    dtype = next(model.parameters()).dtype if model is not None else torch.float32
    for crop in crops:
        image, blur_map, sharp = (t.to(device, dtype) for t in stack([crop]))
        if channels_last:
            image, blur_map = (t.contiguous(memory_format=torch.channels_last) for t in (image, blur_map))
        output = image if model is None else model(image, blur_map).to(sharp.dtype)
        psnrs.append(float(psnr_per_image(output, sharp)[0]))
        ssims.append(float(ssim_per_image(output, sharp)[0]))
    return {"psnr": mean_over_ranks(psnrs, world), "ssim": mean_over_ranks(ssims, world)}


def blurry_baseline(crops: list[Crop], world: World = World()) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM of the blurry inputs themselves, scored as :func:`evaluate` scores the network."""
    return evaluate(None, crops, torch.device("cpu"), world=world)


def pixel4_scores(model: SVBRNet) -> dict[str, float] | None:
    """The Pixel 4 real-photo benchmark at ¼ scale (``benchmarks.real``), ``deblur(photo)`` with the
    runtime's estimated map; ``None`` when its data are not on this machine.

    A learning-curve measurement only: it never ranks checkpoints, so the real photos stay a test set.
    """
    from benchmarks.real import DataMissing, score_pixel4
    from training.evaluate import run_network

    model.eval()
    try:
        report = score_pixel4(lambda photo: run_network(model, photo, runtime_estimate(photo)), layered=False)
    except DataMissing:
        return None
    mean = report["mean"]
    return {
        "val_pixel4_psnr": round(mean["deblur(photo)"]["psnr"], 4),
        "val_pixel4_ssim": round(mean["deblur(photo)"]["ssim"], 5),
        "val_blurry_pixel4_psnr": round(mean["blurry"]["psnr"], 4),
        "val_blurry_pixel4_ssim": round(mean["blurry"]["ssim"], 5),
    }


def runtime_estimated(crops: list[Crop]) -> list[Crop]:
    """The same crops given the runtime's own estimate of their blur map (``estimate_blur_map``)."""
    return [Crop(c.blurry, c.sharp, runtime_estimate(c.blurry), c.true_radius_px) for c in crops]


@dataclass
class RunState:
    step: int = 0  # optimiser steps completed
    seconds: float = 0.0  # training time, validation included
    best_score: float | None = None  # the config's best_metric of best.pt
    resumes: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class StopRequest:
    """Turns SIGTERM/SIGINT into a flag the loop checks after each step (then it checkpoints and returns)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no signal handling, nothing to restore
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Run:
    """The files of a run directory (see the module docstring)."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = Path(out_dir)
        self.resume = self.dir / "resume.pt"
        self.optimizer = self.dir / "optimizer.pt"
        self.log = self.dir / "log.jsonl"
        self.best = self.dir / "best.pt"


class Trainer:
    """One run of a schedule: the model, its optimiser and weight average, the data, validation and checkpoints.

    :func:`training.train.train` is ``Trainer(...).run(max_steps)``. The parts are methods so that each can be
    tested on its own: :meth:`learning_rate` (schedule and resume warm-up), :meth:`train_step` (one optimiser
    step on one batch), :meth:`validate` (score every validation set, log, keep ``best.pt``),
    :meth:`checkpoint` (``resume.pt`` + ``optimizer.pt``), and the constructor's restore of a run.

    Args:
        config: the schedule.
        out_dir: run directory (see :mod:`training.train`).
        images_dir: folder of sharp photos (default: ``../shared/datasets/sharp-train``).
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue ``out_dir/resume.pt``; without it an existing run is an error.
        quiet: no progress bar or messages.

    Under torchrun (see ``training.distributed``) every rank makes one; rank 0
    alone writes the run directory and reports.
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: Path,
        images_dir: Path | None = None,
        device: str = "auto",
        resume: bool = False,
        quiet: bool = False,
    ) -> None:
        self.config = config
        self.images_dir = Path(images_dir or DEFAULT_IMAGES)
        self.run_dir = Run(out_dir)
        self.world = current_world()
        self.quiet = quiet or not self.world.is_main
        if config.batch_size % self.world.size:
            raise ValueError(f"batch_size {config.batch_size} does not split evenly over {self.world.size} processes")
        if self.world.is_main:
            self.run_dir.dir.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(device, self.world)
        torch.manual_seed(config.seed)

        self.model = SVBRNet(config.head).to(self.device)
        if self.world.size > 1:
            synchronise_batchnorm(self.model, self.device)  # before the optimiser is given the parameters
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        use_cuda_amp = self.device.type == "cuda" and config.cuda_amp
        self.scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
        self.autocast_dtype = torch.float16 if use_cuda_amp else torch.bfloat16
        self.autocast_enabled = use_cuda_amp or (self.device.type == "cpu" and config.cpu_bf16 and cpu_has_fast_bf16())
        # float32, or float64 under torch.set_default_dtype
        self.parameter_dtype = next(self.model.parameters()).dtype

        self.state = RunState()
        self.notes: list[str] = []  # provenance carried from checkpoint to checkpoint
        self.warmup_until = 0  # steps before this one ramp the learning rate up (moments being rebuilt)
        resumed_average = None
        if resume and self.run_dir.resume.exists():
            resumed_average = self._restore()
        elif self.run_dir.resume.exists():
            raise FileExistsError(f"{self.run_dir.resume} exists: pass --resume to continue it, or another -o/--output")
        elif config.init_weights:
            self._start_from(config.init_weights)

        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None
        if self.average is not None:
            if resumed_average is not None:
                self.average.load_state_dict(resumed_average)
            elif self.state.step:
                self.notes.append(f"weight average (decay {config.ema_decay}) started at step {self.state.step}")
        #: The weights validated, kept and shipped: the average when there is one.
        self.scored = self.average.model if self.average is not None else self.model
        self.forward: torch.nn.Module = self.model
        if self.world.size > 1:
            self.forward = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self._data_ready = False

    def _restore(self) -> dict[str, Any] | None:
        """Continue ``resume.pt`` (and ``optimizer.pt`` when it is of the same step); returns the saved average."""
        config, run = self.config, self.run_dir
        checkpoint = load_checkpoint(run.resume, map_location=str(self.device))
        saved_config, current_config = checkpoint["metadata"]["config"], config_record(config)
        changed = schedule_changes(saved_config, current_config)
        if changed:
            raise ValueError(
                f"{run.resume} was written with another config (differs in {', '.join(changed)}); use another -o/--output"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.state = RunState(**checkpoint["run_state"])
        self.state.resumes += 1
        self.notes = list(checkpoint["metadata"].get("notes", []))
        defaults = config_record(TrainConfig(name="", stages=()))
        for key in sorted(DATA_CHANGES):
            if saved_config.get(key, defaults[key]) != current_config[key]:
                self.notes.append(f"from step {self.state.step}: {key} = {json.dumps(current_config[key])}")
        restored = False
        if run.optimizer.exists():
            saved = torch.load(run.optimizer, map_location=str(self.device), weights_only=False)
            if saved.get("step") == self.state.step:
                self.optimizer.load_state_dict(saved["optimizer"])
                self.scaler.load_state_dict(saved["scaler"])
                restored = True
        if not restored:
            self.warmup_until = self.state.step + config.adam_warmup_steps
        if not self.quiet:
            how = (
                "with Adam's state" if restored else f"rebuilding Adam's moments over {config.adam_warmup_steps} steps"
            )
            print(f"resuming {run.resume} at step {self.state.step} ({how})", file=sys.stderr)
        return checkpoint.get("ema")

    def _start_from(self, init_weights: str) -> None:
        """A fine-tune's fresh start: the weights it names, Adam's moments built over a warm-up."""
        initial = load_checkpoint(REPOSITORY_ROOT / init_weights, map_location=str(self.device))
        self.model.load_state_dict(initial["model"])
        self.warmup_until = self.config.adam_warmup_steps
        self.notes.append(
            f"fine-tuned from {init_weights} (step {initial['metadata'].get('step')} of "
            f"{initial['metadata'].get('config', {}).get('name')!r})"
        )

    def _prepare_data(self) -> None:
        """The validation sets, their blurry baselines and the training photos (deferred: a finished run needs none)."""
        if self._data_ready:
            return
        config, world = self.config, self.world
        settings = SynthSettings(config.sample_height, config.sample_width, config.seed)
        self.val_photos = PhotoSet(self.images_dir, "val", settings, lazy=True)  # only val_samples are decoded
        self.val_sets = {
            "true": validation_crops(
                self.val_photos, config.val_samples, config.seed, estimated=False, shard=world.shard
            )
        }
        if any(stage.augmented_fraction for stage in config.stages):
            self.val_sets["estimated"] = validation_crops(
                self.val_photos, config.val_samples, config.seed, estimated=True, shard=world.shard
            )
        if config.val_runtime_estimate:
            self.val_sets["runtime"] = runtime_estimated(self.val_sets["true"])
        for name in config.val_degradations:
            self.val_sets[name] = validation_crops(
                self.val_photos, config.val_samples, config.seed, estimated=False, shard=world.shard, degradation=name
            )
        self.train_photos = PhotoSet(
            self.images_dir,
            "train",
            settings,
            lazy=True,
            pipeline=config.pipeline,
            camera_ranges=camera_ranges(config.camera_overrides),
        )
        # The blurry input's own scores on the validation sets: the level the curve must clear.
        self.blurry_scores = {
            f"val_blurry_{k}": round(v, 5) for k, v in blurry_baseline(self.val_sets["true"], world).items()
        }
        for name in config.val_degradations:  # the noisy and compressed inputs' own level
            self.blurry_scores.update(
                {f"val_blurry_{name}_{k}": round(v, 5) for k, v in blurry_baseline(self.val_sets[name], world).items()}
            )
        self._data_ready = True

    def metadata(self) -> dict[str, Any]:
        """What a checkpoint records about the run besides its weights."""
        self._prepare_data()
        return {
            "config": config_record(self.config),
            "commit": git_commit(),
            "images_dir": str(self.images_dir),
            "train_images": len(self.train_photos.paths),
            "val_images": len(self.val_photos.paths),
            "step": self.state.step,
            "validation": self.state.history[-1] if self.state.history else {},
            "weights": f"moving average, decay {self.config.ema_decay}" if self.average is not None else "trained",
            "notes": self.notes,
        }

    def checkpoint(self) -> None:
        """Write ``resume.pt`` (weights, average, run state) and ``optimizer.pt`` (Adam, the loss scaler)."""
        if not self.world.is_main:
            return
        extra = {"ema": self.average.state_dict()} if self.average is not None else {}
        save_checkpoint(self.run_dir.resume, self.model, self.metadata(), run_state=asdict(self.state), **extra)
        torch.save(
            {"step": self.state.step, "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()},
            self.run_dir.optimizer,
        )

    def learning_rate(self, step: int) -> float:
        """The learning rate of optimiser step ``step``: the schedule's, ramped up while Adam's moments rebuild."""
        lr = learning_rate_at(self.config, step)
        if step < self.warmup_until:
            warmup = self.config.adam_warmup_steps
            lr *= (step - (self.warmup_until - warmup) + 1) / warmup
        return lr

    def train_step(self, image: torch.Tensor, blur_map: torch.Tensor, sharp: torch.Tensor, lr: float) -> float:
        """One optimiser step on one batch (N×3×H×W image and target, N×1×H×W map); returns the loss.

        Updates the weight average and advances ``state.step``.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        image, blur_map, sharp = (
            t.to(self.device, self.parameter_dtype, non_blocking=True) for t in (image, blur_map, sharp)
        )
        if self.config.channels_last:
            image, blur_map = (t.contiguous(memory_format=torch.channels_last) for t in (image, blur_map))
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_enabled):
            output = self.forward(image, blur_map)
        loss = deblur_loss(output, sharp, self.config.l1_weight)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.average is not None:
            self.average.update(self.model)
        self.state.step += 1
        return float(loss.detach())

    def validate(self, stage: Stage, lr: float, losses: list[float]) -> dict[str, Any]:
        """Score the scored weights on every validation set; log the record, keep ``best.pt`` when it ranks first."""
        self._prepare_data()
        config, world, state = self.config, self.world, self.state
        record: dict[str, Any] = {
            "step": state.step,
            "stage": stage.name,
            "lr": lr,
            "train_loss": mean_over_ranks(losses, world) if losses else None,
            "seconds": round(state.seconds, 1),
            **self.blurry_scores,
        }
        for kind, crops in self.val_sets.items():
            scores = evaluate(self.scored, crops, self.device, config.channels_last, world)
            record.update({f"val_{kind}_psnr": round(scores["psnr"], 4), f"val_{kind}_ssim": round(scores["ssim"], 5)})
        if config.val_pixel4 and world.is_main:
            record.update(pixel4_scores(self.scored) or {})
        if self.average is not None:  # the trained weights themselves, for comparison
            scores = evaluate(self.model, self.val_sets["true"], self.device, config.channels_last, world)
            record.update(
                {"val_trained_true_psnr": round(scores["psnr"], 4), "val_trained_true_ssim": round(scores["ssim"], 5)}
            )
        self.model.train()
        state.history.append(record)
        score = best_score(record, config.best_metric)
        improved = state.best_score is None or score > state.best_score
        if improved:
            state.best_score = score
        if not world.is_main:
            return record
        with self.run_dir.log.open("a") as log:
            log.write(json.dumps(record) + "\n")
        if improved:
            save_checkpoint(self.run_dir.best, self.scored, self.metadata(), seconds=state.seconds)
        if not self.quiet:
            tqdm.write(json.dumps(record), file=sys.stderr)
        return record

    def _loader(self, end: int) -> DataLoader:
        """The batches of steps ``state.step`` .. ``end`` - 1 (batch k is a pure function of the seed and k)."""
        config = self.config
        stage, _ = config.stage_at(self.state.step)
        batches = OnTheFlyBatches(
            self.train_photos,
            config.patch_size,
            config.batch_size,
            stage.augmented_fraction,
            config.seed,
            length=config.total_steps,
            shard=self.world.shard,
        )
        return DataLoader(
            batches,
            batch_size=None,
            sampler=range(self.state.step, end),
            num_workers=config.workers,
            prefetch_factor=4 if config.workers else None,
            multiprocessing_context="spawn" if config.workers else None,
            persistent_workers=False,
        )

    def run(self, max_steps: int | None = None) -> RunState:
        """Train to the end of the schedule, or ``max_steps`` more steps, or a SIGTERM/SIGINT; checkpointed."""
        config, state = self.config, self.state
        if state.step >= config.total_steps:
            return state
        self._prepare_data()
        if config.init_weights and state.step == 0 and not state.history:
            # The starting weights' own scores: step 0 of the fine-tune's learning curve.
            self.validate(config.stages[0], 0.0, [])
        stop_at = config.total_steps if max_steps is None else min(config.total_steps, state.step + max_steps)
        with StopRequest() as stop:
            while state.step < stop_at and not stop.requested:
                stage, stage_end = config.stage_at(state.step)
                end = min(stage_end, stop_at)
                loader = self._loader(end)
                self.model.train()
                losses: list[float] = []
                lr = learning_rate_at(config, state.step)
                progress = tqdm(
                    total=end - state.step,
                    disable=self.quiet,
                    file=sys.stderr,
                    mininterval=10,
                    desc=f"{stage.name} (steps {state.step}..{end} of {config.total_steps})",
                )
                started = time.perf_counter()
                try:
                    for image, blur_map, sharp in loader:
                        lr = self.learning_rate(state.step)
                        losses.append(self.train_step(image, blur_map, sharp, lr))
                        progress.update()
                        progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}", refresh=False)
                        now = time.perf_counter()
                        state.seconds += now - started
                        started = now
                        if state.step % config.val_every_steps == 0 or state.step == config.total_steps:
                            self.validate(stage, lr, losses)
                            losses = []
                            started = time.perf_counter()  # validation time is not training time
                        stop.requested = any_rank(stop.requested, self.world)  # every rank stops after the same step
                        if state.step % config.checkpoint_every_steps == 0 or stop.requested:
                            self.checkpoint()
                        if stop.requested:
                            break
                except RuntimeError:
                    # A DataLoader worker killed by the same Ctrl+C: checkpoint what is done.
                    if not stop.requested:
                        raise
                finally:
                    progress.close()
                self.checkpoint()
        if stop.requested and not self.quiet:
            print(f"stopped at step {state.step}; checkpoint {self.run_dir.resume}", file=sys.stderr)
        return state
