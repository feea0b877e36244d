"""What a method gives the engine, and the method registry."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from distilkit.data.base import DatasetInfo, SegDataset
from distilkit.data.loader import TrainView
from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError

_METHODS: dict[str, Callable[[TrainConfig], Method]] = {}


def register_method(name: str) -> Callable:
    def wrap(cls):
        _METHODS[name] = cls
        cls.name = name
        return cls

    return wrap


def method_names() -> list[str]:
    return sorted(_METHODS)


def build_method(cfg: TrainConfig) -> Method:
    if cfg.method not in _METHODS:
        raise DistilkitError(f"unknown method '{cfg.method}'; known: {', '.join(method_names())}")
    return _METHODS[cfg.method](cfg)


class Method:
    """Subclasses set up networks and data in __init__ and implement `training_step`."""

    name = "base"
    imgsz: tuple[int, int]  # training crop size, recorded in checkpoints
    # whether best.safetensors may be chosen by val mIoU; False where the val labels are the unlabelled target's
    # (adaptation), which may only measure: best.safetensors is then the final, deployed model
    selects_on_val = True

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg

    # what the engine moves, saves, restores
    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    # what the engine feeds: one loader per view, batches arrive as {name: (images, labels, indices)}
    def train_views(self) -> dict[str, TrainView]:
        raise NotImplementedError

    # which parameters train (optimizer groups; an `lr_mult` key scales the base lr)
    def param_groups(self) -> list[dict]:
        raise NotImplementedError

    def training_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        """Losses of one step; the engine backpropagates `loss` and logs every entry."""
        raise NotImplementedError

    def lr_segments(self) -> list[int]:
        """Iterations per stage; each stage gets its own warm-up and decay."""
        return [self.cfg.iters]

    def after_step(self, step: int) -> None:
        """Hook after the optimizer step (EMA updates, schedules)."""

    # what is evaluated and saved as the run's model checkpoint
    def student(self) -> nn.Module:
        raise NotImplementedError

    def extra_checkpoints(self) -> dict[str, nn.Module]:
        """Networks saved beside the student as their own checkpoints (e.g. DUDA's large teacher)."""
        return {}

    def info(self) -> DatasetInfo:
        raise NotImplementedError

    def val_dataset(self) -> SegDataset:
        raise NotImplementedError

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass
