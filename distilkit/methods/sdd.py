"""SDD: CE + pixel KD (T = 4) + scale decoupled distillation of region logits (M = [1, 2, 4], beta = 2)."""

from __future__ import annotations

from distilkit.data.base import IGNORE_INDEX
from distilkit.losses import pixel_kd
from distilkit.losses.sdd import sdd_loss
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent


@register_method("sdd")
class SDD(TeacherStudent):
    def distill(self, student, teacher, labels, per_sample=False):
        a = self.cfg.method_args
        t = a.get("temperature", 4.0)
        valid = (labels != IGNORE_INDEX).float()
        terms = {"kd": a.get("kd_weight", 1.0) * pixel_kd(student, teacher, t, valid, per_sample)}
        scales, beta = tuple(a.get("scales", (1, 2, 4))), a.get("beta", 2.0)
        terms["sdd"] = a.get("sdd_weight", 1.0) * sdd_loss(
            student, teacher, labels, scales, beta, a.get("sdd_temperature", t), per_sample=per_sample
        )
        return terms
