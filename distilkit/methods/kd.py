"""Pixel knowledge distillation (Hinton KD per pixel): CE + w * KD(teacher -> student; T)."""

from __future__ import annotations

from distilkit.data.base import IGNORE_INDEX
from distilkit.losses import pixel_kd
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent


@register_method("kd")
class PixelKD(TeacherStudent):
    def distill(self, student, teacher, labels, per_sample=False):
        a = self.cfg.method_args
        valid = (labels != IGNORE_INDEX).float() if a.get("kd_valid_only", True) else None
        kd = pixel_kd(student, teacher, a.get("temperature", 4.0), valid, per_sample)
        return {"kd": a.get("kd_weight", 1.0) * kd}
