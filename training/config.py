"""A training schedule (``training/configs/*.json``) and the pure functions of it: stages, learning rate,
which config changes a resumed run may make, and how a validation record ranks ``best.pt``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.degradations import camera_ranges
from training.model import HEADS
from training.photos import PIPELINES, VALIDATION_DEGRADATIONS

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


def config_record(config: TrainConfig) -> dict[str, Any]:
    """The config as it is stored in checkpoints (plain JSON types)."""
    return json.loads(json.dumps(asdict(config)))


#: Config keys a resumed run may change.
RESUMABLE_CHANGES = frozenset({"description", "ema_decay", "val_pixel4", "camera_overrides", "init_weights", "workers"})

#: Resumable changes that alter the training data from the step of the resume on: each one is
#: recorded in the checkpoint's notes, so the weights' provenance says which data made them.
DATA_CHANGES = frozenset({"camera_overrides"})


def schedule_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Config keys whose values differ between a checkpoint and the current config.

    The description is prose, a key one of the two records lacks (a setting
    added to ``TrainConfig`` after the run began) keeps its default, and the
    weight average only watches the trained weights, ``init_weights`` is read by a fresh run
    only (a release moves the file it named), and ``workers`` only says how many processes make the
    crops (a machine with more cores resumes with more, ``svbr train --workers``), so none of them stops
    a resume.
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
