"""SDD: CE + pixel KD (T = 4) + scale decoupled distillation of region logits (M = [1, 2, 4], beta = 2)."""

from __future__ import annotations

from distilkit.data.base import IGNORE_INDEX
from distilkit.losses import pixel_kd
from distilkit.losses.sdd import sdd_loss
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent
from distilkit.schema import defaults


@register_method("sdd")
class SDD(TeacherStudent):
    def distill(self, student, teacher, labels, per_sample=False):
        a = {**defaults("sdd"), **self.cfg.method_args}
        t = a["temperature"]
        valid = (labels != IGNORE_INDEX).float()
        terms = {"kd": a["kd_weight"] * pixel_kd(student, teacher, t, valid, per_sample)}
        region_t = t if a["sdd_temperature"] is None else a["sdd_temperature"]
        terms["sdd"] = a["sdd_weight"] * sdd_loss(
            student, teacher, labels, tuple(a["scales"]), a["beta"], region_t, per_sample=per_sample
        )
        return terms
