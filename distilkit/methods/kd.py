"""Pixel knowledge distillation (Hinton KD per pixel): CE + w * KD(teacher -> student; T)."""

from __future__ import annotations

from distilkit.data.base import IGNORE_INDEX
from distilkit.engine.config import TrainConfig
from distilkit.losses import pixel_kd
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent
from distilkit.schema import defaults


@register_method("kd")
class PixelKD(TeacherStudent):
    def __init__(self, cfg: TrainConfig):
        cfg.method_args = {**defaults("kd"), **cfg.method_args}  # recorded in args.json: a run says its temperature
        super().__init__(cfg)

    def distill(self, student, teacher, labels, per_sample=False):
        a = self.cfg.method_args
        valid = (labels != IGNORE_INDEX).float() if a["kd_valid_only"] else None
        return {"kd": a["kd_weight"] * pixel_kd(student, teacher, a["temperature"], valid, per_sample)}
