"""SAKD: sample-level adaptive KD with DPP sample selection, as a plug-in over a base distillation method.

Each epoch: a difficulty pass (teacher and student on interrupted images, no gradient) gives every image an
easiness; easiness sets a per-image distillation strength alpha and the quality of a quality-diversity DPP
that picks round(r N) images to train on. The base method (kd, sdd, hdl or cwd) supplies per-image CE and
distillation terms; SAKD weights them (1 - alpha_i) CE_i + alpha_i D_i. The selection is the loader's epoch
order and alpha a per-sample weight, so any base composes.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from distilkit.data.transforms import normalize, resize_image, to_tensor
from distilkit.engine import distributed as ddp
from distilkit.engine.config import TrainConfig
from distilkit.losses import pixel_kd
from distilkit.methods.base import Method, build_method, register_method
from distilkit.schema import METHOD_ARGS, defaults
from distilkit.selection.adaptive import easiness, interrupt, interruption_rate, quality, selection_size, update_alpha
from distilkit.selection.dpp import greedy_map, quality_diversity_kernel
from distilkit.utils.console import err_console

# SAKD's own arguments; its temperature, when not given, is its base's (set below)
DEFAULTS = {k: v for k, v in defaults("sakd").items() if v is not None}


def run_length(epochs: int, k: int, global_batch: int) -> int:
    """Optimiser steps of `epochs` epochs of k selected images."""
    return max(1, round(epochs * k / global_batch))


@register_method("sakd")
class SAKD(Method):
    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        a = cfg.method_args = {**DEFAULTS, **cfg.method_args}  # checked by the schema (distilkit/schema.py)
        base_keys = METHOD_ARGS[a["base"]].model_fields  # the base reads its own arguments, not SAKD's
        self.base = build_method(
            replace(cfg, method=a["base"], method_args={k: v for k, v in a.items() if k in base_keys})
        )
        # the difficulty pass measures the base's own pixel KD: its temperature unless one is given
        a.setdefault("temperature", self.base.cfg.method_args.get("temperature", 4.0))
        self.imgsz = self.base.imgsz
        self.n = len(self.base.train_set)
        self.k = selection_size(self.n, a["ratio"])
        # the run's length is epochs of selections, in global batches (cfg.batch on each of the ranks)
        cfg.iters = run_length(a["epochs"], self.k, cfg.batch * ddp.world_size())
        self.base.view.order = self.select
        self.alpha = torch.ones(self.n, dtype=torch.float64)
        self.times_selected = torch.zeros(self.n, dtype=torch.float64)
        self.kd_losses = torch.ones(self.n, dtype=torch.float64)
        self.selections: list[list[int]] = []
        self.features: torch.Tensor | None = None  # pooled teacher features, computed once
        self._images: torch.Tensor | None = None  # uint8 difficulty-pass images, loaded once

    # ---- delegated to the base method --------------------------------------------------------------
    def networks(self):
        return self.base.networks()

    def train_views(self):
        return self.base.train_views()

    def param_groups(self):
        return self.base.param_groups()

    def student(self):
        return self.base.student()

    def info(self):
        return self.base.info()

    def val_dataset(self):
        return self.base.val_dataset()

    # ---- selection ---------------------------------------------------------------------------------
    def select(self, epoch: int) -> list[int]:
        """The loader's order for `epoch`: the DPP selection, computed when the loader first reaches it.

        The loader reads ahead past the last epoch; those few batches are never trained on, so they reuse the
        last selection instead of paying for a difficulty pass."""
        if epoch >= self.cfg.method_args["epochs"] and self.selections:
            return self.selections[-1]
        while len(self.selections) <= epoch:
            self.selections.append(self._select(len(self.selections)))
        return self.selections[epoch]

    def _select(self, epoch: int) -> list[int]:
        a = self.cfg.method_args
        beta = interruption_rate(epoch, a["epochs"], a["theta"])
        if epoch % a["select_every"] == 0:
            self.kd_losses = self.difficulty(epoch, beta)
        easy = easiness(self.kd_losses, self.times_selected)
        self.alpha = update_alpha(self.alpha, easy, beta, a["lam"])
        g = self._epoch_generator(epoch)
        if a["selection"] == "random":
            chosen = torch.randperm(self.n, generator=g)[: self.k].tolist()
        else:
            diag, row = quality_diversity_kernel(self.features, quality(easy, a["gamma"]))
            chosen = greedy_map(diag, row, self.k)
        self.times_selected[chosen] += 1
        err_console.print(f"sakd epoch {epoch}: interruption {beta:.2f}, {len(chosen)} of {self.n} images selected, "
                      f"mean alpha {self.alpha[chosen].mean():.3f}")  # fmt: skip
        # the DPP picks a set; its greedy order (most diverse first) would make every epoch's batches alike
        # and unlike the data, so the epoch visits the set in a seeded random order, as a shuffled loader does
        return [chosen[i] for i in torch.randperm(len(chosen), generator=g).tolist()]

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        """The random draws of one epoch (interruption, visiting order), fixed by --seed."""
        return torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)

    def difficulty_images(self) -> torch.Tensor:
        if self._images is None:
            scale = self.cfg.method_args["difficulty_scale"]
            size = tuple(max(32, 32 * round(s * scale / 32)) for s in self.imgsz)
            data, images = self.base.train_set, []
            for i in range(self.n):
                sample = data.load_or_skip(i)  # --skip-bad: a bad image scores on black; the loader replaces it
                img = resize_image(to_tensor(sample[0]), size) if sample else torch.zeros(3, *size)
                images.append((img * 255).round().to(torch.uint8))
            self._images = torch.stack(images)
        return self._images

    @torch.no_grad()
    def difficulty(self, epoch: int, beta: float) -> torch.Tensor:
        """L~_i: pixel KD between teacher and student on interrupted image i (eval mode, no gradient). The
        first pass also pools the teacher's clean deepest features for the DPP kernel.

        Under torchrun each rank scores every world-th batch and the ranks exchange their results, so every
        rank selects the same images; the interruption draws do not depend on the number of ranks."""
        a, info = self.cfg.method_args, self.info()
        teacher, student = self.base.teacher, self.student()
        device = next(student.parameters()).device
        g = self._epoch_generator(epoch)
        images, mine, step = self.difficulty_images(), {}, a["difficulty_batch"]
        teacher.eval()  # the engine puts every network in train mode; the frozen teacher's BN must not move
        student.eval()
        for b, i in enumerate(range(0, self.n, step)):
            x = normalize(images[i : i + step].float().div(255), info.mean, info.std)
            xi, _ = interrupt(x, beta, a["grid"], a["eta"], g)  # drawn on every rank, in the same order
            if b % ddp.world_size() != ddp.rank():
                continue
            pooled = None
            if self.features is None:
                pooled = teacher(x.to(device), return_features=True)[1]["encoder"][-1].float().mean((2, 3)).cpu()
            xi = xi.to(device)
            t = teacher(xi)
            loss = pixel_kd(student(xi), t, a["temperature"], per_sample=True).double().cpu()
            mine[b] = (loss, pooled)
        student.train()
        scored = {b: v for part in ddp.all_gather_object(mine) for b, v in part.items()}
        if self.features is None:
            self.features = torch.cat([scored[b][1] for b in sorted(scored)])
        return torch.cat([scored[b][0] for b in sorted(scored)])

    # ---- training ----------------------------------------------------------------------------------
    def training_step(self, batch, step):
        images, labels, index = batch["train"]
        self.base.before_step(step)
        terms = self.base.losses(images, labels, per_sample=True)
        ce = terms.pop("ce")
        distill = sum(terms.values())
        alpha = self.alpha[index.cpu()].to(ce.device, ce.dtype)
        loss = ((1 - alpha) * ce + alpha * distill).mean()
        return {"loss": loss, "ce": ce.mean(), "distill": distill.mean(), "alpha": alpha.mean()}

    def after_step(self, step):
        self.base.after_step(step)

    def extra_state(self):
        return {"alpha": self.alpha, "times_selected": self.times_selected, "kd_losses": self.kd_losses,
                "selections": self.selections, "features": self.features, "base": self.base.extra_state()}  # fmt: skip

    def load_extra_state(self, state):
        self.alpha, self.times_selected = state["alpha"], state["times_selected"]
        self.kd_losses, self.selections = state["kd_losses"], [list(s) for s in state["selections"]]
        self.features = state["features"]
        self.base.load_extra_state(state["base"])
