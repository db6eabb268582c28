"""Data-parallel training across processes: `torchrun --nproc-per-node N -m training.train ...`.

torchrun starts N copies of ``training.train`` and tells each its place in the
environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, the rendezvous address).
Every rank draws the same batch plan for step ``k`` and renders its share of
the crops (``training.photos.OnTheFlyBatches``'s ``shard``), DistributedDataParallel
averages the gradients, and BatchNorm normalises with the statistics of the
whole global batch, so N processes with global batch B make the steps one
process with batch B makes, up to float summation order.

torch's ``SyncBatchNorm`` refuses CPU tensors, so on CPUs (``gloo``) the
BatchNorm layers become :class:`GlobalBatchNorm2d`, the same statistics
computed with differentiable all-reduces; on GPUs (``nccl``) they become
``torch.nn.SyncBatchNorm``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed._functional_collectives as functional_collectives
from torch import Tensor, nn


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank ``rank`` of ``size`` (1: no distribution)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Whether this process writes checkpoints, logs and the progress bar."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.size


def current_world() -> World:
    """The process group's world, or a one-process world when none is initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextlib.contextmanager
def process_group(device: str) -> Iterator[World]:
    """Join the process group torchrun set up (``nccl`` for CUDA, else ``gloo``); a no-op outside torchrun.

    Args:
        device: ``auto``, ``cpu`` or ``cuda``, as ``svbr train --device``.
    """
    if not launched_by_torchrun():
        yield World()
        return
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield current_world()
    finally:
        dist.destroy_process_group()


def _summed_over_ranks(x: Tensor) -> Tensor:
    """All-reduce (sum) that autograd differentiates: its backward sums the gradients over ranks.

    The functional collectives are what torch names as the successor of the
    deprecated ``torch.distributed.nn.functional.all_reduce``.
    """
    return functional_collectives.wait_tensor(functional_collectives.all_reduce(x, "sum", dist.group.WORLD))


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover the batch of every rank (CPU ``SyncBatchNorm``).

    Same parameters, buffers and state-dict keys as ``BatchNorm2d``; outside
    training or a multi-process group it is ``BatchNorm2d``. Mean and variance
    are summed over ranks with all-reduces whose backward all-reduces the
    gradients, so each rank's loss reaches every rank's activations through the
    shared statistics, as in one process with the whole batch.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        local_count = x.new_full((1,), x.shape[0] * x.shape[2] * x.shape[3])
        totals = _summed_over_ranks(torch.cat([x.sum(dim=(0, 2, 3)), local_count]))
        count = totals[-1]
        mean = totals[:-1] / count
        centred = x - mean.view(1, -1, 1, 1)
        # Two passes (mean, then squared deviations), as precise as one-process BatchNorm.
        variance = _summed_over_ranks((centred * centred).sum(dim=(0, 2, 3))) / count
        output = centred * torch.rsqrt(variance + self.eps).view(1, -1, 1, 1)
        if self.affine:
            output = output * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = variance * count / (count - 1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        return output


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every ``BatchNorm2d`` normalising over the global batch (in place; returns it).

    The new layers hold the old layers' parameter and buffer objects, as
    ``SyncBatchNorm.convert_sync_batchnorm`` does, so an optimiser built before
    the conversion still updates them.
    """
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            replacement = GlobalBatchNorm2d(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats, device=device
            )
            for key, value in [*child.named_parameters(recurse=False), *child.named_buffers(recurse=False)]:
                setattr(replacement, key, value)
            replacement.train(child.training)
            setattr(model, name, replacement)
        else:
            synchronise_batchnorm(child, device)
    return model


def _collective_device() -> torch.device:
    """Where a tensor must live for the group's backend: ``nccl`` reduces GPU tensors only."""
    return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")


def any_rank(flag: bool, world: World) -> bool:
    """Whether ``flag`` is set on any rank (e.g. a stop request that reached one process first)."""
    if world.size == 1:
        return flag
    value = torch.tensor([int(flag)], device=_collective_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(values: Sequence[float], world: World) -> float:
    """The mean of every rank's ``values`` together (each rank passes its own share)."""
    if world.size == 1:
        return float(sum(values) / len(values))
    totals = torch.tensor([float(sum(values)), float(len(values))], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(totals)
    return float(totals[0] / totals[1])
