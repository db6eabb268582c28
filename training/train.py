"""`svbr train --config CONFIG`: two-stage training of SVBR-Net (SPEC §4), resumable anywhere.

Stage 1 trains on true blur maps, stage 2 on a mix of true and estimated
maps. Batches are blurred on the fly from the sharp photos
(``training.photos``): there is no cache to build, and batch ``k`` is a pure
function of (seed, k), so a resumed run draws exactly the batches the
uninterrupted run would have drawn.

A run directory holds::

    OUT/resume.pt      weights, step, best validation so far: small, meant to be committed
    OUT/optimizer.pt   Adam's moments (3× the weights): local only
    OUT/log.jsonl      one line per validation
    OUT/best.pt        the weights of the best validation so far

With ``ema_decay`` set, the weights validated, kept as ``best.pt`` and bundled
are the moving average of the trained weights (``training.averaging``); the
average is saved in ``resume.pt`` beside them.

``--resume`` continues from ``resume.pt``. Without ``optimizer.pt`` (a brand-new
machine) Adam's moments are rebuilt while the learning rate ramps up again
over ``adam_warmup_steps``. The run checkpoints every ``checkpoint_every_steps``
and on SIGTERM/SIGINT.

``torchrun --nproc-per-node N -m training.train ...`` runs it data-parallel
(``training.distributed``): the same steps, the global batch split over N processes.
"""

from __future__ import annotations

import argparse
import json
import math
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
from training.degradations import camera_ranges
from training.distributed import World, any_rank, current_world, mean_over_ranks, process_group, synchronise_batchnorm
from training.losses import deblur_loss, psnr_per_image, ssim_per_image
from training.model import HEADS, PRETRAINED_PATH, SVBRNet, load_checkpoint, save_checkpoint
from training.photos import PIPELINES, VALIDATION_DEGRADATIONS, Crop, OnTheFlyBatches, PhotoSet, stack, validation_crops

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
#: Where the photos are when a config names none and --images is not given.
DEFAULT_IMAGES = REPOSITORY_ROOT.parent / "shared" / "datasets" / "sharp-train"


@dataclass(frozen=True)
class Stage:
    name: str
    steps: int
    augmented_fraction: float  # share of crops given an estimated map instead of the true one


@dataclass(frozen=True)
class TrainConfig:
    name: str
    stages: tuple[Stage, ...]
    head: str = HEADS[0]
    sample_height: int = 360
    sample_width: int = 340
    patch_size: int | None = None  # None: whole samples
    batch_size: int = 8
    learning_rate: float = 1e-3
    lr_schedule: str = "step"  # "step": × lr_gamma every lr_step_steps; "cosine": per step down to min_lr
    lr_step_steps: int = 1
    lr_gamma: float = 0.1
    min_learning_rate: float = 1e-5
    adam_warmup_steps: int = 0  # after a resume without optimizer.pt: linear ramp while Adam's moments rebuild
    l1_weight: float = 0.0  # 0 = the paper's loss
    ema_decay: float = 0.0  # > 0: validate, keep as best.pt and ship an exponential moving average of the weights
    channels_last: bool = False
    cpu_bf16: bool = False  # bfloat16 autocast on CPU
    cuda_amp: bool = True  # float16 autocast on CUDA
    val_samples: int = 24  # whole validation samples scored at every validation
    val_every_steps: int = 500
    checkpoint_every_steps: int = 200
    workers: int = 1
    seed: int = 0
    description: str = ""
    pipeline: str = "paper"  # training.photos.PIPELINES: "paper" (SPEC §3) or "camera" (training.degradations)
    init_weights: str | None = None  # a fresh run starts from these weights (path relative to the repository)
    val_degradations: tuple[str, ...] = ()  # extra validation sets: the true-map set with noise or JPEG added
    val_runtime_estimate: bool = False  # extra validation set: the true-map set with the runtime's estimated map
    best_metric: str = "val_true_psnr"  # "val_true_psnr", or "mean_psnr": the mean PSNR over every validation set
    camera_overrides: dict[str, Any] = field(default_factory=dict)  # CameraRanges fields changed for this run
    val_pixel4: bool = False  # also score the Pixel 4 real photos (benchmarks.real, no map), when present; never ranked

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def stage_at(self, step: int) -> tuple[Stage, int]:
        """The stage step ``step`` belongs to, and the step at which that stage ends."""
        end = 0
        for stage in self.stages:
            end += stage.steps
            if step < end:
                return stage, end
        raise IndexError(f"step {step} is past the schedule ({self.total_steps} steps)")


def load_config(path_or_name: str) -> TrainConfig:
    """A config file, or the name of one shipped in training/configs (``paper``, ``cpu``)."""
    path = Path(path_or_name)
    if not path.is_file():
        path = CONFIG_DIR / f"{path_or_name}.json"
    if not path.is_file():
        shipped = ", ".join(p.stem for p in sorted(CONFIG_DIR.glob("*.json")))
        raise FileNotFoundError(f"config not found: {path_or_name} (shipped configs: {shipped})")
    raw = json.loads(path.read_text())
    unknown = set(raw) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown keys in {path}: {sorted(unknown)}")
    raw["stages"] = tuple(Stage(**stage) for stage in raw["stages"])
    raw["val_degradations"] = tuple(raw.get("val_degradations", ()))
    config = TrainConfig(**raw)
    if config.head not in HEADS:
        raise ValueError(f"{path}: head must be one of {', '.join(HEADS)}, got {config.head!r}")
    if config.pipeline not in PIPELINES:
        raise ValueError(f"{path}: pipeline must be one of {', '.join(PIPELINES)}, got {config.pipeline!r}")
    unknown_sets = set(config.val_degradations) - set(VALIDATION_DEGRADATIONS)
    if unknown_sets:
        raise ValueError(
            f"{path}: unknown val_degradations {sorted(unknown_sets)}; known: {', '.join(VALIDATION_DEGRADATIONS)}"
        )
    camera_ranges(config.camera_overrides)  # unknown fields or inconsistent weights: an error now, not at step 1
    if config.best_metric not in BEST_METRICS:
        raise ValueError(f"{path}: best_metric must be one of {', '.join(BEST_METRICS)}, got {config.best_metric!r}")
    return config


#: How a validation picks ``best.pt``: the PSNR with true maps on clean images, or the mean over every set.
BEST_METRICS: tuple[str, ...] = ("val_true_psnr", "mean_psnr")


def best_score(record: dict[str, Any], metric: str) -> float:
    """The number a validation record is ranked by (higher is better)."""
    if metric == "mean_psnr":
        values = [
            value
            for key, value in record.items()
            if key.startswith("val_")
            and key.endswith("_psnr")
            and not key.startswith(("val_blurry", "val_trained", "val_pixel4"))
        ]
        return float(np.mean(values))
    return float(record[metric])


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


def config_record(config: TrainConfig) -> dict[str, Any]:
    """The config as it is stored in checkpoints (plain JSON types)."""
    return json.loads(json.dumps(asdict(config)))


#: Config keys a resumed run may change.
RESUMABLE_CHANGES = frozenset({"description", "ema_decay", "val_pixel4", "camera_overrides", "init_weights"})

#: Resumable changes that alter the training data from the step of the resume on: each one is
#: recorded in the checkpoint's notes, so the weights' provenance says which data made them.
DATA_CHANGES = frozenset({"camera_overrides"})


def schedule_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Config keys whose values differ between a checkpoint and the current config.

    The description is prose, a key one of the two records lacks (a setting
    added to ``TrainConfig`` after the run began) keeps its default, and the
    weight average only watches the trained weights, and ``init_weights`` is read by a fresh run
    only (a release moves the file it named), so none of them stops a resume.
    """
    return sorted(
        key for key in set(saved) & set(current) if key not in RESUMABLE_CHANGES and saved[key] != current[key]
    )


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """The schedule's learning rate at optimiser step ``step`` (before any resume warm-up)."""
    if config.lr_schedule == "step":
        return config.learning_rate * config.lr_gamma ** (step // config.lr_step_steps)
    if config.lr_schedule == "cosine":
        progress = min(step / max(config.total_steps, 1), 1.0)
        span = config.learning_rate - config.min_learning_rate
        return config.min_learning_rate + 0.5 * span * (1 + math.cos(math.pi * progress))
    raise ValueError(f"lr_schedule must be 'step' or 'cosine', got {config.lr_schedule!r}")


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


def train(
    config: TrainConfig,
    out_dir: Path,
    images_dir: Path | None = None,
    device: str = "auto",
    resume: bool = False,
    max_steps: int | None = None,
    quiet: bool = False,
) -> RunState:
    """Run (or continue) the schedule; returns the state when it ends, stops or has made ``max_steps``.

    Args:
        config: the schedule.
        out_dir: run directory (see the module docstring).
        images_dir: folder of sharp photos (default: ``../shared/datasets/sharp-train``).
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: continue ``out_dir/resume.pt``; without it an existing run is an error.
        max_steps: stop (checkpointed) after this many steps in this call.
        quiet: no progress bar or messages.

    Under torchrun (see ``training.distributed``) every rank calls this; rank 0
    alone writes the run directory and reports.
    """
    images_dir = Path(images_dir or DEFAULT_IMAGES)
    run = Run(out_dir)
    world = current_world()
    quiet = quiet or not world.is_main
    if config.batch_size % world.size:
        raise ValueError(f"batch_size {config.batch_size} does not split evenly over {world.size} processes")
    if world.is_main:
        run.dir.mkdir(parents=True, exist_ok=True)
    torch_device = pick_device(device, world)
    torch.manual_seed(config.seed)

    model = SVBRNet(config.head).to(torch_device)
    if world.size > 1:
        synchronise_batchnorm(model, torch_device)  # before the optimiser is given the parameters
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    use_cuda_amp = torch_device.type == "cuda" and config.cuda_amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
    autocast_dtype = torch.float16 if use_cuda_amp else torch.bfloat16
    autocast_enabled = use_cuda_amp or (torch_device.type == "cpu" and config.cpu_bf16 and cpu_has_fast_bf16())

    state = RunState()
    notes: list[str] = []  # provenance carried from checkpoint to checkpoint
    warmup_until = 0  # steps before this one ramp the learning rate up (moments being rebuilt)
    resumed_average = None
    if resume and run.resume.exists():
        checkpoint = load_checkpoint(run.resume, map_location=str(torch_device))
        changed = schedule_changes(checkpoint["metadata"]["config"], config_record(config))
        if changed:
            raise ValueError(
                f"{run.resume} was written with another config (differs in {', '.join(changed)}); use another --out"
            )
        model.load_state_dict(checkpoint["model"])
        resumed_average = checkpoint.get("ema")
        state = RunState(**checkpoint["run_state"])
        state.resumes += 1
        notes = list(checkpoint["metadata"].get("notes", []))
        saved_config, current_config = checkpoint["metadata"]["config"], config_record(config)
        defaults = config_record(TrainConfig(name="", stages=()))
        for key in sorted(DATA_CHANGES):
            if saved_config.get(key, defaults[key]) != current_config[key]:
                notes.append(f"from step {state.step}: {key} = {json.dumps(current_config[key])}")
        restored = False
        if run.optimizer.exists():
            saved = torch.load(run.optimizer, map_location=str(torch_device), weights_only=False)
            if saved.get("step") == state.step:
                optimizer.load_state_dict(saved["optimizer"])
                scaler.load_state_dict(saved["scaler"])
                restored = True
        if not restored:
            warmup_until = state.step + config.adam_warmup_steps
        if not quiet:
            how = (
                "with Adam's state" if restored else f"rebuilding Adam's moments over {config.adam_warmup_steps} steps"
            )
            print(f"resuming {run.resume} at step {state.step} ({how})", file=sys.stderr)
    elif run.resume.exists() and not resume:
        raise FileExistsError(f"{run.resume} exists: pass --resume to continue it, or another --out")
    elif config.init_weights:
        initial = load_checkpoint(REPOSITORY_ROOT / config.init_weights, map_location=str(torch_device))
        model.load_state_dict(initial["model"])
        warmup_until = config.adam_warmup_steps
        notes.append(
            f"fine-tuned from {config.init_weights} (step {initial['metadata'].get('step')} of "
            f"{initial['metadata'].get('config', {}).get('name')!r})"
        )
    if state.step >= config.total_steps:
        return state
    average = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    if average is not None:
        if resumed_average is not None:
            average.load_state_dict(resumed_average)
        elif state.step:
            notes.append(f"weight average (decay {config.ema_decay}) started at step {state.step}")
    scored = average.model if average is not None else model  # the weights validated, kept and shipped
    forward = model
    if world.size > 1:
        forward = DistributedDataParallel(
            model, device_ids=[torch_device.index] if torch_device.type == "cuda" else None
        )

    settings = SynthSettings(config.sample_height, config.sample_width, config.seed)
    val_photos = PhotoSet(images_dir, "val", settings, lazy=True)  # only the val_samples photos are decoded
    val_sets = {
        "true": validation_crops(val_photos, config.val_samples, config.seed, estimated=False, shard=world.shard)
    }
    if any(stage.augmented_fraction for stage in config.stages):
        val_sets["estimated"] = validation_crops(
            val_photos, config.val_samples, config.seed, estimated=True, shard=world.shard
        )
    if config.val_runtime_estimate:
        val_sets["runtime"] = runtime_estimated(val_sets["true"])
    for name in config.val_degradations:
        val_sets[name] = validation_crops(
            val_photos, config.val_samples, config.seed, estimated=False, shard=world.shard, degradation=name
        )
    train_photos = PhotoSet(
        images_dir,
        "train",
        settings,
        lazy=True,
        pipeline=config.pipeline,
        camera_ranges=camera_ranges(config.camera_overrides),
    )

    def metadata() -> dict[str, Any]:
        return {
            "config": config_record(config),
            "commit": git_commit(),
            "images_dir": str(images_dir),
            "train_images": len(train_photos.paths),
            "val_images": len(val_photos.paths),
            "step": state.step,
            "validation": state.history[-1] if state.history else {},
            "weights": f"moving average, decay {config.ema_decay}" if average is not None else "trained",
            "notes": notes,
        }

    def checkpoint() -> None:
        if not world.is_main:
            return
        extra = {"ema": average.state_dict()} if average is not None else {}
        save_checkpoint(run.resume, model, metadata(), run_state=asdict(state), **extra)
        torch.save(
            {"step": state.step, "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()}, run.optimizer
        )

    # The blurry input's own scores on the validation set: the level the curve must clear.
    blurry_scores = {f"val_blurry_{k}": round(v, 5) for k, v in blurry_baseline(val_sets["true"], world).items()}
    for name in config.val_degradations:  # the noisy and compressed inputs' own level
        blurry_scores.update(
            {f"val_blurry_{name}_{k}": round(v, 5) for k, v in blurry_baseline(val_sets[name], world).items()}
        )

    def validate(stage: Stage, lr: float, losses: list[float]) -> None:
        record: dict[str, Any] = {
            "step": state.step,
            "stage": stage.name,
            "lr": lr,
            "train_loss": mean_over_ranks(losses, world) if losses else None,
            "seconds": round(state.seconds, 1),
            **blurry_scores,
        }
        for kind, crops in val_sets.items():
            scores = evaluate(scored, crops, torch_device, config.channels_last, world)
            record.update({f"val_{kind}_psnr": round(scores["psnr"], 4), f"val_{kind}_ssim": round(scores["ssim"], 5)})
        if config.val_pixel4 and world.is_main:
            record.update(pixel4_scores(scored) or {})
        if average is not None:  # the trained weights themselves, for comparison
            scores = evaluate(model, val_sets["true"], torch_device, config.channels_last, world)
            record.update(
                {"val_trained_true_psnr": round(scores["psnr"], 4), "val_trained_true_ssim": round(scores["ssim"], 5)}
            )
        model.train()
        state.history.append(record)
        score = best_score(record, config.best_metric)
        improved = state.best_score is None or score > state.best_score
        if improved:
            state.best_score = score
        if not world.is_main:
            return
        with run.log.open("a") as log:
            log.write(json.dumps(record) + "\n")
        if improved:
            save_checkpoint(run.best, scored, metadata(), seconds=state.seconds)
        if not quiet:
            tqdm.write(json.dumps(record), file=sys.stderr)

    parameter_dtype = next(model.parameters()).dtype  # float32, or float64 under torch.set_default_dtype
    if config.init_weights and state.step == 0 and not state.history:
        # The starting weights' own scores: step 0 of the fine-tune's learning curve.
        validate(config.stages[0], 0.0, [])
    stop_at = config.total_steps if max_steps is None else min(config.total_steps, state.step + max_steps)
    with StopRequest() as stop:
        while state.step < stop_at and not stop.requested:
            stage, stage_end = config.stage_at(state.step)
            batches = OnTheFlyBatches(
                train_photos,
                config.patch_size,
                config.batch_size,
                stage.augmented_fraction,
                config.seed,
                length=config.total_steps,
                shard=world.shard,
            )
            end = min(stage_end, stop_at)
            loader = DataLoader(
                batches,
                batch_size=None,
                sampler=range(state.step, end),
                num_workers=config.workers,
                prefetch_factor=4 if config.workers else None,
                multiprocessing_context="spawn" if config.workers else None,
                persistent_workers=False,
            )
            model.train()
            losses: list[float] = []
            lr = learning_rate_at(config, state.step)
            progress = tqdm(
                total=end - state.step,
                disable=quiet,
                file=sys.stderr,
                mininterval=10,
                desc=f"{stage.name} (steps {state.step}..{end} of {config.total_steps})",
            )
            started = time.perf_counter()
            try:
                for image, blur_map, sharp in loader:
                    lr = learning_rate_at(config, state.step)
                    if state.step < warmup_until:
                        lr *= (state.step - (warmup_until - config.adam_warmup_steps) + 1) / config.adam_warmup_steps
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    image, blur_map, sharp = (
                        t.to(torch_device, parameter_dtype, non_blocking=True) for t in (image, blur_map, sharp)
                    )
                    if config.channels_last:
                        image, blur_map = (t.contiguous(memory_format=torch.channels_last) for t in (image, blur_map))
                    with torch.autocast(torch_device.type, dtype=autocast_dtype, enabled=autocast_enabled):
                        output = forward(image, blur_map)
                    loss = deblur_loss(output, sharp, config.l1_weight)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    if average is not None:
                        average.update(model)
                    losses.append(float(loss.detach()))
                    state.step += 1
                    progress.update()
                    progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}", refresh=False)
                    now = time.perf_counter()
                    state.seconds += now - started
                    started = now
                    if state.step % config.val_every_steps == 0 or state.step == config.total_steps:
                        validate(stage, lr, losses)
                        losses = []
                        started = time.perf_counter()  # validation time is not training time
                    stop.requested = any_rank(stop.requested, world)  # every rank stops after the same step
                    if state.step % config.checkpoint_every_steps == 0 or stop.requested:
                        checkpoint()
                    if stop.requested:
                        break
            except RuntimeError:
                # A DataLoader worker killed by the same Ctrl+C: checkpoint what is done.
                if not stop.requested:
                    raise
            finally:
                progress.close()
            checkpoint()
    if stop.requested and not quiet:
        print(f"stopped at step {state.step}; checkpoint {run.resume}", file=sys.stderr)
    return state


def bundle(run_checkpoint: Path, out: Path = PRETRAINED_PATH) -> dict[str, Any]:
    """Write the weights of a run's checkpoint (``best.pt`` or ``resume.pt``) as the bundled model."""
    checkpoint = load_checkpoint(run_checkpoint)
    metadata = dict(checkpoint["metadata"])
    if "seconds" in checkpoint:
        metadata["seconds"] = checkpoint["seconds"]
    elif "run_state" in checkpoint:
        metadata["seconds"] = checkpoint["run_state"]["seconds"]
    model = SVBRNet(metadata.get("head", "sigmoid"))
    model.load_state_dict(checkpoint["model"])
    save_checkpoint(out, model.eval(), metadata)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="svbr train",
        description=__doc__.split("\n\n")[0],
        epilog="Data parallel over N processes (GPUs, or CPU processes with gloo): "
        "torchrun --nproc-per-node N -m training.train --config CONFIG [options]; "
        "batch_size must divide by N (README: Scaling out).",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="config file, or a shipped config name: cpu (the shipped model) or paper (SPEC §4, GPU)",
    )
    parser.add_argument(
        "--images", type=Path, default=DEFAULT_IMAGES, help="folder of sharp photos (default: %(default)s)"
    )
    from runtime.arguments import add_device, add_output

    add_output(
        parser,
        dest="out",
        type=Path,
        metavar="DIR",
        help="run directory (default: training/runs/<config name>, whose small resume state is committed)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/resume.pt")
    parser.add_argument(
        "--max-steps", type=int, help="stop (checkpointed) after this many steps; 0 with --bundle: only bundle"
    )
    add_device(
        parser, choices=("auto", "cpu", "cuda"), help="auto (CUDA when present, the default), cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for PyTorch (default 1, for a background run beside other work; "
        "a thread that loses its core stalls every other thread at each operator)",
    )
    parser.add_argument(
        "--bundle",
        action="store_true",
        help=f"afterwards, write OUT/best.pt as the bundled model ({PRETRAINED_PATH.name})",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        config = load_config(args.config)
        out_dir = args.out or Path(__file__).resolve().parent / "runs" / config.name
        state = None
        with process_group(args.device) as world:
            if args.max_steps != 0:  # --max-steps 0 --bundle: bundle what the run has, train nothing
                state = train(
                    config,
                    out_dir,
                    images_dir=args.images,
                    device=args.device,
                    resume=args.resume,
                    max_steps=args.max_steps,
                )
        if args.bundle and world.is_main:
            metadata = bundle(Run(out_dir).best)
            print(f"bundled weights of step {metadata['step']} written to {PRETRAINED_PATH}", file=sys.stderr)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        print(f"svbr train: error: {error}", file=sys.stderr)
        return 2
    if state is not None and world.is_main:
        print(json.dumps(state.history[-1] if state.history else {}, indent=1))
    return 0


if __name__ == "__main__":  # torchrun ... -m training.train
    sys.exit(main())
