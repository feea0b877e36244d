"""CWD: CE + w * channel-wise distillation of the logit maps (+ optionally of the deepest encoder features
through a trained 1x1 adapter, as HDL adapts features).

Defaults tau = 1, w = 5: the CWD authors' Cityscapes config (pppppM/mmsegmentation-distiller) and MMRazor's
`cwd_logits_pspnet_r101_d8_pspnet_r18_d8_512x1024_cityscapes_80k` agree on both. They distil the decode head's
stride-8 logits; distilkit's models give logits at the input size, so the maps here are the resized logits.
"""

from __future__ import annotations

import torch

from distilkit.data.base import IGNORE_INDEX
from distilkit.engine.config import TrainConfig
from distilkit.losses import cwd_loss, pixel_kd
from distilkit.losses.hdl import adapt, make_adapters
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent
from distilkit.schema import defaults


@register_method("cwd")
class CWD(TeacherStudent):
    def __init__(self, cfg: TrainConfig):
        cfg.method_args = {**defaults("cwd"), **cfg.method_args}
        self.uses_features = cfg.method_args["feature_weight"] > 0
        super().__init__(cfg)
        self.adapters = torch.nn.ModuleList()
        if self.uses_features:  # channel counts from one tiny forward: the adapter is built once, here
            with torch.no_grad():
                x = torch.zeros(1, 3, 64, 64)
                s = self.model.eval()(x, return_features=True)[1]["encoder"][-1:]
                t = self.teacher.eval()(x, return_features=True)[1]["encoder"][-1:]
            self.model.train()
            self.adapters = make_adapters(s, t)

    def networks(self):
        return {**super().networks(), "adapters": self.adapters} if self.uses_features else super().networks()

    def param_groups(self):
        groups = super().param_groups()
        if not self.uses_features:
            return groups
        return [*groups, {"params": list(self.adapters.parameters()), "lr_mult": groups[-1]["lr_mult"]}]

    def distill(self, student, teacher, labels, per_sample=False):
        a = self.cfg.method_args
        (s, s_feats), (t, t_feats) = (student, teacher) if self.uses_features else ((student, None), (teacher, None))
        terms = {"cwd": a["cwd_weight"] * cwd_loss(s, t, a["tau"], per_sample)}
        if self.uses_features:
            t_last = t_feats["encoder"][-1]
            adapted = adapt(self.adapters[0], s_feats["encoder"][-1], t_last.shape[-2:])
            terms["cwd_feat"] = a["feature_weight"] * cwd_loss(adapted, t_last, a["tau"], per_sample)
        if a["kd_weight"]:
            valid = (labels != IGNORE_INDEX).float()
            terms["kd"] = a["kd_weight"] * pixel_kd(s, t, a["temperature"], valid, per_sample)
        return terms
