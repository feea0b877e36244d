"""The shape every logit/feature distillation method shares: supervised training of a student from the
registry, plus a frozen teacher from a checkpoint and the method's distillation terms."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.engine.checkpoint import load_model
from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError
from distilkit.methods.supervised import Supervised


class TeacherStudent(Supervised):
    """Subclasses implement `distill(student_logits, teacher_logits, labels) -> dict of loss terms`."""

    def __init__(self, cfg: TrainConfig):
        teacher = cfg.method_args.get("teacher")
        if not teacher:
            raise DistilkitError(
                f"distill {cfg.method} needs --teacher CKPT (train one with `distilkit train-teacher`)"
            )
        self.teacher, self.teacher_meta = load_model(teacher)
        self.teacher.requires_grad_(False)
        super().__init__(cfg)
        if self.teacher_meta["num_classes"] != self._info.num_classes:
            raise DistilkitError(
                f"--teacher predicts {self.teacher_meta['num_classes']} classes but '{cfg.data}' has "
                f"{self._info.num_classes}"
            )

    def default_imgsz(self) -> tuple[int, int]:
        return tuple(self.teacher_meta["imgsz"])  # the student sees what the teacher was trained on

    def networks(self):
        return {"teacher": self.teacher, "student": self.model}

    def training_step(self, batch, step):
        images, labels, _ = batch["train"]
        with torch.no_grad():
            self.teacher.eval()
            t = self.teacher(images)
        s = self.model(images)
        losses = {"ce": F.cross_entropy(s.float(), labels, ignore_index=self._info.ignore_index)}
        losses.update(self.distill(s, t, labels))
        losses["loss"] = sum(losses.values())
        return losses

    def distill(self, student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor) -> dict:
        raise NotImplementedError
