"""Exponential moving average of a model (the mean teacher of self-training)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn


def ema_decay_schedule(alpha: float) -> Callable[[int], float]:
    """a_t = min(1 - 1/(t+1), alpha): the DAFormer/MIC schedule (fast early, alpha later).

    t counts the optimiser steps the model has taken (the first update is t = 1, a = 1/2), so until a reaches
    alpha the average is the plain mean of the initial weights and the k models since: the initial weights
    keep 1/(k+1), as in DAFormer, whose update at local_iter t follows t steps."""
    return lambda step: min(1.0 - 1.0 / (step + 1), alpha)


class ModelEMA:
    """Keeps `ema = a * ema + (1 - a) * model` over floating-point parameters and buffers.

    Integer entries (BatchNorm's num_batches_tracked) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: Callable[[int], float] | float = 0.999, copy_model: bool = True):
        self.ema = copy.deepcopy(model) if copy_model else model
        self.ema.requires_grad_(False)
        self.decay = decay if callable(decay) else (lambda step, d=decay: d)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> float:
        a = self.decay(step)
        source = model.state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(a).add_(source[name].detach(), alpha=1 - a)
            else:
                value.copy_(source[name])
        return a
