"""`svbr train --config CONFIG`: two-stage training of SVBR-Net (SPEC §4).

Stage 1 trains on true blur maps, stage 2 on a mix of true and estimated
(augmented) maps. Every epoch ends with a validation pass, a checkpoint
(``OUT/last.pt``) and a line in ``OUT/log.jsonl``; ``--resume`` continues
from the last checkpoint and draws exactly the batches the uninterrupted run
would have drawn (see ``training.dataset.PatchBatches``).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from training.cache import list_samples
from training.dataset import PatchBatches, ValidationSamples
from training.losses import deblur_loss, psnr_per_image, ssim_per_image
from training.model import PRETRAINED_PATH, SVBRNet, load_checkpoint, save_checkpoint

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass(frozen=True)
class Stage:
    name: str
    epochs: int
    augmented_fraction: float  # share of samples drawn with their estimated map


@dataclass(frozen=True)
class TrainConfig:
    name: str
    cache: str
    stages: tuple[Stage, ...]
    patch_size: int | None = None  # None: whole samples
    batch_size: int = 8
    learning_rate: float = 1e-3
    lr_schedule: str = "step"  # "step": × lr_gamma every lr_step_epochs; "cosine": per step to min_lr
    lr_step_epochs: int = 20
    lr_gamma: float = 0.1
    min_learning_rate: float = 1e-5
    steps_per_epoch: int | None = None  # None: one pass over the training samples
    l1_weight: float = 0.0  # 0 = the paper's loss
    identity_warmup_steps: int = 0  # first steps learn to reproduce the input (see README)
    channels_last: bool = False
    cpu_bf16: bool = False  # bfloat16 autocast on CPU
    cuda_amp: bool = True  # float16 autocast on CUDA
    val_samples: int | None = None  # None: the whole validation split every epoch
    workers: int = 1
    seed: int = 0
    description: str = ""

    @property
    def total_epochs(self) -> int:
        return sum(stage.epochs for stage in self.stages)

    def stage_of(self, epoch: int) -> Stage:
        for stage in self.stages:
            if epoch < stage.epochs:
                return stage
            epoch -= stage.epochs
        raise IndexError("epoch past the schedule")


def load_config(path_or_name: str) -> TrainConfig:
    """A config file, or the name of one shipped in training/configs (``paper``, ``cpu``)."""
    path = Path(path_or_name)
    if not path.is_file():
        path = CONFIG_DIR / f"{path_or_name}.json"
    if not path.is_file():
        shipped = ", ".join(p.stem for p in sorted(CONFIG_DIR.glob("*.json")))
        raise FileNotFoundError(f"config not found: {path_or_name} (shipped configs: {shipped})")
    raw = json.loads(path.read_text())
    raw["stages"] = tuple(Stage(**stage) for stage in raw["stages"])
    unknown = set(raw) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown keys in {path}: {sorted(unknown)}")
    return TrainConfig(**raw)


def config_record(config: TrainConfig) -> dict[str, Any]:
    """The config as it is stored in checkpoints (plain JSON types)."""
    return json.loads(json.dumps(asdict(config)))


def learning_rate_at(config: TrainConfig, epoch: int, step: int, total_steps: int) -> float:
    if config.lr_schedule == "step":
        return config.learning_rate * config.lr_gamma ** (epoch // config.lr_step_epochs)
    if config.lr_schedule == "cosine":
        progress = min(step / max(total_steps, 1), 1.0)
        span = config.learning_rate - config.min_learning_rate
        return config.min_learning_rate + 0.5 * span * (1 + math.cos(math.pi * progress))
    raise ValueError(f"lr_schedule must be 'step' or 'cosine', got {config.lr_schedule!r}")


def pick_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device")
    return torch.device(requested)


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@torch.no_grad()
def evaluate(model: SVBRNet, cache: Path, map_kind: str, limit: int | None, device: torch.device,
             channels_last: bool = False) -> dict[str, float]:
    """Mean PSNR (dB) and SSIM on whole validation samples."""
    model.eval()
    psnrs, ssims = [], []
    for image, blur_map, sharp in ValidationSamples(cache, map_kind=map_kind, limit=limit):
        image, blur_map, sharp = (t[None].to(device) for t in (image, blur_map, sharp))
        if channels_last:
            image, blur_map = (t.contiguous(memory_format=torch.channels_last) for t in (image, blur_map))
        output = model(image, blur_map).float()
        psnrs.append(float(psnr_per_image(output, sharp)[0]))
        ssims.append(float(ssim_per_image(output, sharp)[0]))
    return {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims))}


@dataclass
class RunState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimiser steps completed
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


def train(config: TrainConfig, out_dir: Path, device: str = "auto", resume: bool = False,
          cache: Path | None = None, quiet: bool = False) -> RunState:
    """Run (or continue) the schedule; returns the final state. Checkpoints to ``out_dir/last.pt``."""
    cache = Path(cache or config.cache)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch_device = pick_device(device)
    torch.manual_seed(config.seed)

    model = SVBRNet().to(torch_device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    use_cuda_amp = torch_device.type == "cuda" and config.cuda_amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda_amp)
    autocast_dtype = torch.float16 if use_cuda_amp else torch.bfloat16
    autocast_enabled = use_cuda_amp or (torch_device.type == "cpu" and config.cpu_bf16)

    state = RunState()
    notes: list[str] = []  # provenance carried from checkpoint to checkpoint (e.g. a changed schedule)
    checkpoint_path = out_dir / "last.pt"
    if resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, map_location=str(torch_device))
        if checkpoint["metadata"]["config"] != config_record(config):
            raise ValueError(f"{checkpoint_path} was written with another config; use another --out")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        state = RunState(**checkpoint["run_state"])
        notes = list(checkpoint["metadata"].get("notes", []))
        if not quiet:
            print(f"resuming {checkpoint_path} after epoch {state.epoch} (step {state.step})", file=sys.stderr)
    elif checkpoint_path.exists() and not resume:
        raise FileExistsError(f"{checkpoint_path} exists: pass --resume to continue it, or another --out")

    steps_per_epoch = config.steps_per_epoch or max(1, len(list_samples(cache, "train")) // config.batch_size)
    total_steps = steps_per_epoch * config.total_epochs
    log_path = out_dir / "log.jsonl"

    while state.epoch < config.total_epochs:
        stage = config.stage_of(state.epoch)
        batches = PatchBatches(cache, config.patch_size, config.batch_size, stage.augmented_fraction,
                               config.seed, length=total_steps)
        steps = range(state.step, state.step + steps_per_epoch)
        loader = DataLoader(batches, batch_size=None, sampler=steps, num_workers=config.workers,
                            prefetch_factor=4 if config.workers else None)
        lr = learning_rate_at(config, state.epoch, state.step, total_steps)
        model.train()
        losses: list[float] = []
        started = time.perf_counter()
        progress = tqdm(loader, total=steps_per_epoch, disable=quiet, file=sys.stderr,
                        desc=f"epoch {state.epoch + 1}/{config.total_epochs} ({stage.name})")
        for image, blur_map, sharp in progress:
            lr = learning_rate_at(config, state.epoch, state.step, total_steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            image, blur_map, sharp = (t.to(torch_device, non_blocking=True) for t in (image, blur_map, sharp))
            if config.channels_last:
                image, blur_map = (t.contiguous(memory_format=torch.channels_last) for t in (image, blur_map))
            # Identity warm-up: the network first learns to pass the input through,
            # so deblurring starts from the blurry image's colours, not from grey.
            target = image if state.step < config.identity_warmup_steps else sharp
            with torch.autocast(torch_device.type, dtype=autocast_dtype, enabled=autocast_enabled):
                output = model(image, blur_map)
            loss = deblur_loss(output, target, config.l1_weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
            state.step += 1
            progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}")

        state.epoch += 1
        state.seconds += time.perf_counter() - started
        record: dict[str, Any] = {"epoch": state.epoch, "step": state.step, "stage": stage.name,
                                  "lr": lr, "train_loss": float(np.mean(losses)),
                                  "seconds": round(state.seconds, 1)}
        for map_kind in ("true", "augmented") if stage.augmented_fraction else ("true",):
            metrics = evaluate(model, cache, map_kind, config.val_samples, torch_device, config.channels_last)
            record.update({f"val_{map_kind}_psnr": metrics["psnr"], f"val_{map_kind}_ssim": metrics["ssim"]})
        state.history.append(record)
        with log_path.open("a") as log:
            log.write(json.dumps(record) + "\n")
        if not quiet:
            print(json.dumps(record), file=sys.stderr)
        metadata = {"config": config_record(config), "commit": git_commit(), "cache": str(cache),
                    "train_samples": len(batches.files), "epoch": state.epoch, "step": state.step,
                    "validation": {k: v for k, v in record.items() if k.startswith("val_")},
                    "notes": notes}
        save_checkpoint(checkpoint_path, model, metadata, optimizer=optimizer.state_dict(),
                        scaler=scaler.state_dict(), run_state=asdict(state))
    return state


def bundle(run_checkpoint: Path, out: Path = PRETRAINED_PATH) -> dict[str, Any]:
    """Write the weights of a run's checkpoint, without optimiser state, as the bundled model.

    The metadata keeps the config, commit, data and the last validation metrics.
    """
    checkpoint = load_checkpoint(run_checkpoint)
    metadata = dict(checkpoint["metadata"])
    manifest = Path(metadata["cache"]) / "manifest.json"
    if manifest.is_file():
        manifest_data = json.loads(manifest.read_text())
        metadata["data"] = {"images_dir": manifest_data["images_dir"], "synth": manifest_data["settings"],
                            "train_images": len(manifest_data["split"]["train"]),
                            "val_images": len(manifest_data["split"]["val"])}
    metadata["seconds"] = checkpoint["run_state"]["seconds"]
    model = SVBRNet()
    model.load_state_dict(checkpoint["model"])
    save_checkpoint(out, model.eval(), metadata)
    return metadata


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svbr train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True,
                        help="config file, or a shipped config name: paper (SPEC §4, GPU) or cpu")
    parser.add_argument("--cache", type=Path, help="`svbr synth` cache (default: the config's)")
    parser.add_argument("--out", type=Path, help="run directory (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int,
                        help="CPU threads for PyTorch (default: all cores). On a shared machine use fewer: "
                             "a thread that loses its core stalls every other thread at each operator")
    parser.add_argument("--bundle", action="store_true",
                        help=f"afterwards, write the weights as the bundled model ({PRETRAINED_PATH.name})")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        config = load_config(args.config)
        out_dir = args.out or Path("runs") / config.name
        state = train(config, out_dir, device=args.device, resume=args.resume, cache=args.cache)
        if args.bundle:
            bundle(out_dir / "last.pt")
            print(f"bundled weights written to {PRETRAINED_PATH}", file=sys.stderr)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        print(f"svbr train: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(state.history[-1] if state.history else {}, indent=1))
    return 0
