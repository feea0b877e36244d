"""Target KD: the small model distilled from a frozen large source model on unlabelled target crops, with
CE on the labelled source.

DUDA's control for how much of its gain is plain distillation on target images: DUDA's networks, data views
(source sampling, FDA restyling, augmentation), two-stage schedule and stage 1's KD term (weight,
temperature), without what makes DUDA an adaptation method: no pseudo-labels or mixing, no large student
adapting to the target (LT stays the large source model), no inconsistency-weighted fine-tuning.
"""

from __future__ import annotations

import torch

from distilkit.engine.config import TrainConfig
from distilkit.errors import DistilkitError
from distilkit.losses import pixel_kd
from distilkit.methods.base import register_method
from distilkit.methods.duda import DUDA


@register_method("target-kd")
class TargetKD(DUDA):
    report_name, final_stage = "Target KD (--no-adapt)", "source CE + KD on target"

    def __init__(self, cfg: TrainConfig):
        a = cfg.method_args
        if not a.get("teacher"):  # a random large model has nothing to pass on
            raise DistilkitError("target KD (--no-adapt) needs --teacher: the large model trained on the source")
        if a.get("mic") or a.get("fd_weight"):  # they add self-training losses, which target KD has none of
            raise DistilkitError("--mic and --fd-weight act in DUDA's self-training: drop them with --no-adapt")
        super().__init__(cfg)

    def networks(self):
        return {"lt": self.lt, "ss": self.ss}  # LS is not trained, so not moved or saved

    def param_groups(self):
        return self.ss.param_groups(1.0, self.cfg.head_lr_mult)

    def extra_checkpoints(self):
        return {}  # LT is the --teacher checkpoint, unchanged

    def training_step(self, batch, step):
        (x_src, y_src, _), (x_tgt, _, _) = batch["src"], batch["tgt"]
        with torch.no_grad():
            self.lt.eval()
            soft = self.lt(x_tgt)
        out = self.ss(torch.cat([x_src, x_tgt]))
        b, a = x_src.shape[0], self.args
        losses = {
            "ss_src": self._ce(out[:b], y_src),
            "ss_kd": a["kd_weight"] * pixel_kd(out[b:], soft, a["temperature"]),
        }
        losses["loss"] = losses["ss_src"] + losses["ss_kd"]
        return losses

    def after_step(self, step):
        """Nothing: no EMA teacher to update and no stage 2 to measure."""
