"""HDL: UNet teacher -> FastLiteSSNet student with the hybrid distillation loss.

Loss = 0.5 CE + 0.3 D_CS (multi-scale features through trained 1x1 adapters) + 0.2 Dice (+ optional pixel KD
on logits). An optional freeze stage trains everything but the student encoder first.
"""

from __future__ import annotations

import torch

from distilkit.data.base import IGNORE_INDEX
from distilkit.engine import distributed as ddp
from distilkit.engine.config import TrainConfig
from distilkit.losses import dice_loss, pixel_kd
from distilkit.losses.hdl import hdl_feature_loss, make_adapters
from distilkit.methods.base import register_method
from distilkit.methods.teacher_student import TeacherStudent
from distilkit.schema import defaults


def feature_list(features: dict) -> list[torch.Tensor]:
    """The multi-scale features HDL distils: encoder stages, then the fused map (or the last decoder feature)."""
    last = features.get("fused", features["decoder"])
    return [*features["encoder"], last]


@register_method("hdl")
class HDL(TeacherStudent):
    uses_features = True

    def __init__(self, cfg: TrainConfig):
        cfg.method_args = {**defaults("hdl"), **cfg.method_args}
        super().__init__(cfg)
        with torch.no_grad():  # channel counts from one tiny forward: the adapters are built once, here
            x = torch.zeros(1, 3, 64, 64)
            s = feature_list(self.model.eval()(x, return_features=True)[1])
            t = self.teacher.eval()(x, return_features=True)[1]["encoder"]
        self.model.train()
        with torch.random.fork_rng(devices=[]):  # own draws: the student's later ones (dropout) stay paired with
            torch.manual_seed(cfg.seed + 1)  # the student alone's at this seed
            self.adapters = make_adapters(s, t)
        global_batch = cfg.batch * ddp.world_size()
        self.freeze_iters = round(cfg.method_args["freeze_epochs"] * len(self.train_set) / global_batch)

    def networks(self):
        return {**super().networks(), "adapters": self.adapters}

    def param_groups(self):
        groups = super().param_groups()
        return [*groups, {"params": list(self.adapters.parameters()), "lr_mult": groups[-1]["lr_mult"]}]

    def before_step(self, step):
        self.model.net.encoder.requires_grad_(step >= self.freeze_iters)

    def distill(self, student, teacher, labels, per_sample=False):
        a = self.cfg.method_args
        (s_logits, s_feats), (t_logits, t_feats) = student, teacher
        cs = hdl_feature_loss(feature_list(s_feats), t_feats["encoder"], self.adapters, a["tau"], per_sample)
        terms = {
            "cs": a["cs_weight"] * cs,
            "dice": a["dice_weight"] * dice_loss(s_logits, labels, per_sample=per_sample),
        }
        if a["kd_weight"]:
            valid = (labels != IGNORE_INDEX).float()
            terms["kd"] = a["kd_weight"] * pixel_kd(s_logits, t_logits, a["temperature"], valid, per_sample)
        return terms
