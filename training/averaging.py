"""An exponential moving average of the weights: what the run validates and ships when ``ema_decay`` > 0.

At the learning rates of a long cosine schedule's first half, single weights
jitter from step to step; their average over the last ~1/(1 − decay) steps
scores like weights of a much lower learning rate, without stopping the run.
The BatchNorm running statistics are averaged alongside.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """``average ← decay · average + (1 − decay) · weights`` after every optimiser step.

    Args:
        model: the trained network; the average starts as a copy of it.
        decay: in (0, 1); 0.999 averages over roughly the last thousand steps.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for average, current in zip(self.model.state_dict().values(), model.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current, 1.0 - self.decay)
            else:  # BatchNorm's num_batches_tracked
                average.copy_(current)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)
