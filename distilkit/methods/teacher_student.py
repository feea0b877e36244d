"""The shape every logit/feature distillation method shares: a frozen teacher from a checkpoint, a student
from the registry, CE on labels plus the method's distillation terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.data import build_dataset
from distilkit.data.loader import TrainView
from distilkit.data.style import style_reference
from distilkit.data.transforms import AugmentConfig
from distilkit.engine.checkpoint import load_model
from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError
from distilkit.methods.base import Method
from distilkit.models import create_model


class TeacherStudent(Method):
    """Subclasses implement `distill(student_logits, teacher_logits, labels) -> dict of loss terms`."""

    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        a = cfg.method_args
        if not a.get("teacher"):
            raise DistilkitError(
                f"distill {cfg.method} needs --teacher CKPT (train one with `distilkit train-teacher`)"
            )
        self.train_set = build_dataset(cfg.data, "train", cfg.data_root)
        self._val = build_dataset(cfg.val_data or cfg.data, cfg.val_split, cfg.data_root)
        self._info = self.train_set.info
        self.teacher, meta = load_model(a["teacher"])
        if meta["num_classes"] != self._info.num_classes:
            raise DistilkitError(
                f"--teacher predicts {meta['num_classes']} classes but '{cfg.data}' has {self._info.num_classes}"
            )
        self.teacher.requires_grad_(False)
        self.student_net = create_model(cfg.model, self._info.num_classes, cfg.pretrained)
        self.imgsz = tuple(cfg.imgsz or meta["imgsz"])
        aug = AugmentConfig(**a.get("aug", {}))
        style = style_reference(a, cfg.data_root)
        beta = a.get("fda_beta", 0.01)
        self.view = TrainView(self.train_set, self.imgsz, aug, self._info.mean, self._info.std, None, style, beta)

    def networks(self):
        return {"teacher": self.teacher, "student": self.student_net}

    def train_views(self):
        return {"train": self.view}

    def param_groups(self):
        return self.student_net.param_groups(head_lr_mult=self.cfg.head_lr_mult)

    def training_step(self, batch, step):
        images, labels, _ = batch["train"]
        with torch.no_grad():
            self.teacher.eval()
            t = self.teacher(images)
        s = self.student_net(images)
        losses = {"ce": F.cross_entropy(s.float(), labels, ignore_index=self._info.ignore_index)}
        losses.update(self.distill(s, t, labels))
        losses["loss"] = sum(losses.values())
        return losses

    def distill(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> dict:
        raise NotImplementedError

    def student(self):
        return self.student_net

    def info(self):
        return self._info

    def val_dataset(self):
        return self._val
