"""`svbr train --config CONFIG`: two-stage training of SVBR-Net (SPEC §4), resumable anywhere.

Stage 1 trains on true blur maps, stage 2 on a mix of true and estimated
maps. Batches are blurred on the fly from the sharp photos
(``training.photos``): there is no cache to build, and batch ``k`` is a pure
function of (seed, k), so a resumed run draws exactly the batches the
uninterrupted run would have drawn.

The schedule is a config (``training.config``); the loop is
``training.trainer.Trainer``, whose module docstring describes the run
directory (``resume.pt``, ``optimizer.pt``, ``log.jsonl``, ``best.pt``).
``--resume`` continues from ``resume.pt``.

``torchrun --nproc-per-node N -m training.train ...`` runs it data-parallel
(``training.distributed``): the same steps, the global batch split over N processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from training.config import DEFAULT_IMAGES, TrainConfig, load_config
from training.distributed import process_group
from training.model import PRETRAINED_PATH, SVBRNet, load_checkpoint, save_checkpoint
from training.trainer import Run, RunState, Trainer


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

    ``Trainer(config, out_dir, images_dir, device, resume, quiet).run(max_steps)``; see
    :class:`training.trainer.Trainer` for the arguments.
    """
    return Trainer(config, out_dir, images_dir, device, resume, quiet).run(max_steps)


def bundle(run_checkpoint: Path, out: Path = PRETRAINED_PATH) -> dict[str, Any]:
    """Write the validated weights of a run's checkpoint as the bundled model.

    ``best.pt`` holds them as its weights. ``resume.pt`` of a run with a moving average holds the
    trained weights and, beside them, the average (``ema``), which is what the run validates and
    ships: that is bundled.
    """
    checkpoint = load_checkpoint(run_checkpoint)
    metadata = dict(checkpoint["metadata"])
    if "seconds" in checkpoint:
        metadata["seconds"] = checkpoint["seconds"]
    elif "run_state" in checkpoint:
        metadata["seconds"] = checkpoint["run_state"]["seconds"]
    model = SVBRNet(metadata.get("head", "sigmoid"))
    average = checkpoint.get("ema")
    model.load_state_dict(average if average is not None else checkpoint["model"])
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
        "--workers",
        type=int,
        help="data worker processes making the training crops, instead of the config's (1 in the shipped configs, "
        "for a 2-core machine); on a GPU machine give it most of the CPU cores. A run resumes with any count",
    )
    parser.add_argument(
        "--bundle",
        action="store_true",
        help=f"afterwards, write OUT/best.pt as the bundled model ({PRETRAINED_PATH.name}); without best.pt "
        "(it is not committed), the moving average in OUT/resume.pt",
    )
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be 0 (crops made in the training process) or more, got {args.workers}")
    torch.set_num_threads(args.threads)
    try:
        config = load_config(args.config)
        if args.workers is not None:
            config = replace(config, workers=args.workers)
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
            run = Run(out_dir)
            source = run.best if run.best.is_file() else run.resume
            if source == run.resume:  # best.pt is not committed: a fresh checkout has only resume.pt
                print(f"svbr train: no {run.best}; bundling the weights {run.resume} validates", file=sys.stderr)
            metadata = bundle(source)
            print(f"bundled weights of step {metadata['step']} written to {PRETRAINED_PATH}", file=sys.stderr)
    except (FileNotFoundError, FileExistsError, ValueError, RuntimeError) as error:
        print(f"svbr train: error: {error}", file=sys.stderr)
        return 2
    if state is not None and world.is_main:
        print(json.dumps(state.history[-1] if state.history else {}, indent=1))
    return 0


if __name__ == "__main__":  # torchrun ... -m training.train
    sys.exit(main())
