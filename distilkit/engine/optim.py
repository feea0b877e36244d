"""Optimisers and iteration-based learning-rate schedules (linear warm-up, then poly, cosine or step)."""

from __future__ import annotations

import math

import torch

from distilkit.errors import DistilkitError


def build_optimizer(groups: list[dict], name: str, lr: float, weight_decay: float, momentum: float = 0.9):
    """Groups may carry an `lr_mult` (e.g. x10 for the decode head); the base lr multiplies it."""
    groups = [{**g, "lr": lr * g.pop("lr_mult", 1.0)} for g in groups if g["params"]]
    for g in groups:
        g["initial_lr"] = g["lr"]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise DistilkitError(f"unknown optimizer '{name}'; use adamw, adam or sgd")


def lr_factor(step: int, total: int, warmup: int, schedule: str, power: float = 1.0, min_factor: float = 0.0):
    """Multiplier of the base lr at `step` (0-based) of `total` iterations."""
    if warmup and step < warmup:
        return 1e-6 + (1 - 1e-6) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "poly":
        return min_factor + (1 - min_factor) * (1 - progress) ** power
    if schedule == "cosine":
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":  # x0.1 at half and at three quarters of the stage
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    if schedule == "constant":
        return 1.0
    raise DistilkitError(f"unknown schedule '{schedule}'; use poly, cosine, step or constant")


def build_scheduler(optimizer, total: int, warmup: int, schedule: str, power: float = 1.0, segments=None):
    """LambdaLR over `total` iterations; with `segments` (iterations per stage), each stage gets its own
    warm-up and decay (a multi-stage method restarts its schedule at every stage)."""
    lr_factor(0, total, warmup, schedule, power)  # validates the name before training starts
    bounds = list(segments or [total])

    def factor(step: int) -> float:
        start = 0
        for length in bounds:
            if step < start + length:
                return lr_factor(step - start, length, min(warmup, length // 2), schedule, power)
            start += length
        return lr_factor(bounds[-1], bounds[-1], 0, schedule, power)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
