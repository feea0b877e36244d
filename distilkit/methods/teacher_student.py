"""The shape every logit/feature distillation method shares: supervised training of a student from the
registry, plus a frozen teacher from a checkpoint and the method's distillation terms."""

from __future__ import annotations

import torch

from distilkit.engine.checkpoint import check_label_space, load_model
from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError
from distilkit.losses import cross_entropy
from distilkit.methods.supervised import Supervised


class TeacherStudent(Supervised):
    """Subclasses implement `distill(student, teacher, labels, per_sample) -> dict of loss terms`.

    `student` and `teacher` are logits, or (logits, features) when the class sets `uses_features`. Terms are
    scalars, or B vectors with `per_sample` (what SAKD weights image by image).
    """

    uses_features = False

    def __init__(self, cfg: TrainConfig):
        teacher = cfg.method_args.get("teacher")
        if not teacher:
            raise DistilkitError(
                f"distill {cfg.method} needs --teacher CKPT (train one with `distilkit train-teacher`)"
            )
        self.teacher, self.teacher_meta = load_model(teacher)
        self.teacher.requires_grad_(False)
        super().__init__(cfg)
        check_label_space(self.teacher_meta["class_names"], self._info.class_names, f"--teacher {teacher}")

    def default_imgsz(self) -> tuple[int, int]:
        return tuple(self.teacher_meta["imgsz"])  # the student sees what the teacher was trained on

    def networks(self):
        return {"teacher": self.teacher, "student": self.model}

    def losses(self, images: torch.Tensor, labels: torch.Tensor, per_sample: bool = False) -> dict:
        """CE (weighted by `ce_weight`) and the distillation terms, on one batch."""
        with torch.no_grad():
            self.teacher.eval()
            t = self.teacher(images, return_features=self.uses_features)
        s = self.model(images, return_features=self.uses_features)
        logits = s[0] if self.uses_features else s
        ce = cross_entropy(logits, labels, self._info.ignore_index, per_sample)
        return {"ce": self.cfg.method_args.get("ce_weight", 1.0) * ce, **self.distill(s, t, labels, per_sample)}

    def before_step(self, step: int) -> None:
        """Hook before a step's forward passes (HDL's freeze stage)."""

    def training_step(self, batch, step):
        images, labels, _ = batch["train"]
        self.before_step(step)
        losses = self.losses(images, labels)
        losses["loss"] = sum(losses.values())
        return losses

    def distill(self, student, teacher, labels: torch.Tensor, per_sample: bool = False) -> dict:
        raise NotImplementedError
