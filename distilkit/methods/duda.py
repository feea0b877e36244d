"""DUDA: distilled unsupervised domain adaptation (arXiv 2504.09814), as ../docs/methods.md describes.

Three networks: a large teacher LT (EMA of the large student, never trained by gradients), a large student
LS and the small student SS that is deployed. Stage 1 (pre-adaptation) trains LS and SS by DAFormer-style
self-training from LT's pseudo-labels, SS also distilling LT on the target. Stage 2 measures, per class,
how much LT and SS disagree on the target. Stage 3 fine-tunes SS alone: hard pseudo-labels from LS for
well-adapted classes, LT's soft targets for poorly adapted ones.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from distilkit.adapt import (
    class_inconsistency,
    class_mix,
    masked_image,
    pseudo_labels,
    rcs_probabilities,
    strong_transform,
)
from distilkit.data import build_dataset
from distilkit.data.loader import EvalView, TrainView, eval_loader
from distilkit.data.scan import preflight
from distilkit.data.style import style_reference
from distilkit.data.transforms import AugmentConfig
from distilkit.engine.checkpoint import check_label_space, load_model
from distilkit.engine.config import TrainConfig
from distilkit.engine.ema import ModelEMA, ema_decay_schedule
from distilkit.engine.inference import class_map, infer_logits
from distilkit.engine.metrics import confusion_matrix
from distilkit.engine.validator import evaluate
from distilkit.errors import DistilkitError
from distilkit.losses import cross_entropy, pixel_kd, pixel_kd_map
from distilkit.losses.fd import feature_distance, imagenet_copy, thing_classes
from distilkit.methods.base import Method, register_method
from distilkit.models import create_model
from distilkit.schema import defaults
from distilkit.utils.console import console
from distilkit.utils.progress import progress_bar

RCS_REFERENCE_AREA = 1914 * 1052  # the GTA frame DAFormer's min_pixels was set for


@register_method("duda")
class DUDA(Method):
    selects_on_val = False  # the target's labels only measure: the deployed SS is the one after stage 3
    report_name, final_stage = "DUDA", "3 fine-tuning"  # how report() names the run and its last stage

    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        a = self.args = {**defaults("duda"), **cfg.method_args}  # defaults and checks: schema.DUDAArgs
        self.src_root, self.tgt_root = a.get("src_root") or cfg.data_root, a.get("tgt_root") or cfg.data_root
        self.src = build_dataset(cfg.data, "train", self.src_root, cfg.skip_bad).head(cfg.train_limit)
        self.tgt = build_dataset(a["tgt"], "train", self.tgt_root, cfg.skip_bad).head(cfg.train_limit)
        for dataset in (self.src, self.tgt):
            preflight(dataset)  # every bad sample now, before the first step
        if self.tgt.info.class_names != self.src.info.class_names:
            raise DistilkitError(f"source '{cfg.data}' and target '{a['tgt']}' have different label spaces")
        self.tgt_val = self._target_val(a["tgt_val_split"])
        self._info = self.src.info
        self.imgsz = tuple(cfg.imgsz or self._info.default_imgsz)
        self.n1, self.n3 = int(a["stage1_iters"]), int(a["stage3_iters"])
        if self.n1 + self.n3 != cfg.iters:
            raise DistilkitError(f"iters ({cfg.iters}) must equal stage1 + stage3 iterations ({self.n1 + self.n3})")
        n = self._info.num_classes
        self.ls = self._network("teacher", a["teacher_model"], {})
        self.ema = ModelEMA(self.ls, ema_decay_schedule(a["ema"]))
        self.lt = self.ema.ema
        self.ss = self._network("student", cfg.model, cfg.model_args)
        self.fd_nets, self.fd_classes = self._feature_distance_setup()
        self.g = torch.Generator().manual_seed(cfg.seed + 1)
        self.weights = torch.ones(n)  # I'_c, set by stage 2
        self.stages: list[dict] = []
        rcs = a["rcs"] if a["rcs"] is not None else cfg.data in ("gta", "synthia", "synth-gta")
        aug = AugmentConfig(**cfg.method_args.get("aug", {}))
        mean, std = self._info.mean, self._info.std
        style = style_reference({"style": a["style"], "style_target": a["tgt"]}, self.tgt_root)
        order = self._rcs_order(cfg.seed) if rcs else None
        crop_pixels = a["rcs_min_pixels"] * a["rcs_min_crop_ratio"] * self.imgsz[0] * self.imgsz[1] / 512**2
        self.views = {
            "src": TrainView(self.src, self.imgsz, aug, mean, std, order, style, a["fda_beta"], crop_pixels),
            # target crops: geometric augmentation only, so pseudo-labels see the plain image (as DAFormer)
            "tgt": TrainView(self.tgt, self.imgsz, aug.geometric(), mean, std),
        }

    def _network(self, role: str, arch: str, model_args: dict) -> torch.nn.Module:
        """The `--teacher` / `--student` checkpoint's model when one was given (same label space), else a new one."""
        n, path = self._info.num_classes, self.args[role]
        if not path:
            return create_model(arch, n, self.cfg.pretrained, **model_args)
        model, meta = load_model(path)
        check_label_space(meta["class_names"], self._info.class_names, f"--{role} {path}")
        return model

    def _feature_distance_setup(self) -> tuple[dict, list[int] | None]:
        """Frozen ImageNet-initialised copies of the networks FD regularises, and the classes it is taken on."""
        a = self.args
        if not a["fd_weight"]:
            return {}, None
        nets = {"ls": imagenet_copy(self.ls, "LS (--teacher-model)", a["teacher"] or self.cfg.pretrained)}
        if a["fd_student"]:
            nets["ss"] = imagenet_copy(self.ss, "SS (--model)", a["student"] or self.cfg.pretrained)
        return nets, thing_classes(self._info, a["fd_classes"])

    def _target_val(self, split: str | None):
        if split is not None:
            return build_dataset(self.args["tgt"], split, self.tgt_root, self.cfg.skip_bad)
        try:
            return build_dataset(self.args["tgt"], "val", self.tgt_root, self.cfg.skip_bad)
        except DistilkitError:
            console.print(f"target '{self.args['tgt']}' has no val split: measuring on its train images' labels")
            return self.tgt

    # ---- rare class sampling -------------------------------------------------------------------
    def _rcs_order(self, seed: int):
        """Source class frequencies once, then per epoch: draw a class by P(c), then an image holding more
        than `rcs_min_pixels` of it (scaled to the image's area); each sample carries its class, so the view
        can re-draw crops that miss it."""
        n, min_pixels = self._info.num_classes, self.args["rcs_min_pixels"]
        pixels = np.zeros(n)
        holders: list[list[int]] = [[] for _ in range(n)]
        with progress_bar() as bar:
            task = bar.add_task("class stats", total=len(self.src), unit="img")
            for i in range(len(self.src)):
                bar.advance(task)
                label = self.src.load_or_skip(i, label_only=True)
                if label is None:  # --skip-bad: a bad sample holds no class for RCS
                    continue
                counts = np.bincount(label.ravel(), minlength=256)[:n]
                pixels += counts
                for c in np.flatnonzero(counts > min_pixels * label.size / RCS_REFERENCE_AREA):
                    holders[c].append(i)
        present = [c for c in range(n) if holders[c]]
        freq = pixels[present] / pixels[present].sum()
        probs = torch.as_tensor(rcs_probabilities(freq, self.args["rcs_temperature"]))

        def order(epoch: int) -> list[tuple[int, int]]:
            g = torch.Generator().manual_seed(seed * 1_000_003 + epoch + 77)
            classes = torch.multinomial(probs, len(self.src), replacement=True, generator=g).tolist()
            picks = torch.rand(len(classes), generator=g).tolist()
            return [(holders[present[c]][int(u * len(holders[present[c]]))], present[c])
                    for c, u in zip(classes, picks, strict=True)]  # fmt: skip

        return order

    # ---- what the engine needs -----------------------------------------------------------------
    def networks(self):
        return {"lt": self.lt, "ls": self.ls, "ss": self.ss}

    def train_views(self):
        return self.views

    def param_groups(self):
        """LS and SS, each with a x`head_lr_mult` decode head; a warm-started LS fine-tunes at a tenth."""
        ls_mult = self.args["teacher_lr_mult"]
        if ls_mult is None:
            ls_mult = 0.1 if self.args["teacher"] else 1.0
        head = self.cfg.head_lr_mult
        return self.ls.param_groups(ls_mult, head) + self.ss.param_groups(1.0, head)

    def lr_segments(self):
        return [self.n1, self.n3]

    def student(self):
        return self.ss

    def extra_checkpoints(self):
        return {"teacher": self.lt}

    def info(self):
        return self._info

    def val_dataset(self):
        return self.tgt_val

    def extra_state(self):
        return {"g": self.g.get_state(), "weights": self.weights, "stages": self.stages}

    def load_extra_state(self, state):
        self.g.set_state(state["g"])
        self.weights, self.stages = state["weights"], list(state["stages"])

    # ---- training --------------------------------------------------------------------------------
    def training_step(self, batch, step):
        (x_src, y_src, _), (x_tgt, _, _) = batch["src"], batch["tgt"]
        return self.stage1(x_src, y_src, x_tgt) if step < self.n1 else self.stage3(x_src, y_src, x_tgt)

    def _pseudo_labels(self, logits):
        a = self.args
        return pseudo_labels(logits, a["pseudo_threshold"], a["pseudo_keep"], self._info.ignore_index)

    def _mix(self, x_src, y_src, x_tgt, pseudo):
        if not self.args["mix"]:
            return x_tgt, pseudo
        x_mix, y_mix, _ = class_mix(x_src, y_src, x_tgt, pseudo, self.g, self._info.ignore_index)
        if self.args["strong_aug"]:
            x_mix = self._strong_aug(x_mix)
        return x_mix, y_mix

    def _strong_aug(self, x: torch.Tensor) -> torch.Tensor:
        """DAFormer's strong transform of normalised images (jitter and blur act in [0, 1] space)."""
        mean = torch.as_tensor(self._info.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.as_tensor(self._info.std, device=x.device).view(1, -1, 1, 1)
        return (strong_transform((x * std + mean).clamp(0, 1), self.g) - mean) / std

    def _ce(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CE averaged over valid pixels, or (`ce_average` all, DAFormer's) over all pixels, ignored ones as 0."""
        if self.args["ce_average"] == "valid":
            return cross_entropy(logits, labels, self._info.ignore_index)
        return F.cross_entropy(logits.float(), labels, ignore_index=self._info.ignore_index, reduction="none").mean()

    def _fd(self, name: str, net_feature: torch.Tensor, x_src: torch.Tensor, y_src: torch.Tensor) -> torch.Tensor:
        """fd_weight x the ImageNet feature distance of one network on the source batch."""
        with torch.no_grad():
            imnet = self.fd_nets[name].eval()
            reference = imnet.net.encoder(x_src)[-1]
        n, ignore = self._info.num_classes, self._info.ignore_index
        return self.args["fd_weight"] * feature_distance(net_feature, reference, y_src, self.fd_classes,
                                                         self.args["fd_min_ratio"], n, ignore)  # fmt: skip

    def stage1(self, x_src, y_src, x_tgt):
        b = x_src.shape[0]
        with torch.no_grad():
            self.lt.eval()
            lt_tgt = self.lt(x_tgt)
        pseudo, q = self._pseudo_labels(lt_tgt)
        x_mix, y_mix = self._mix(x_src, y_src, x_tgt, pseudo)
        fd = self.fd_nets
        ls_out = self.ls(torch.cat([x_src, x_mix]), return_features="ls" in fd)
        ss_out = self.ss(torch.cat([x_src, x_mix, x_tgt]), return_features="ss" in fd)
        (ls_out, ls_feats), (ss_out, ss_feats) = (o if isinstance(o, tuple) else (o, None) for o in (ls_out, ss_out))
        losses = {
            "ls_src": self._ce(ls_out[:b], y_src),
            "ls_mix": q * self._ce(ls_out[b:], y_mix),
            "ss_src": self._ce(ss_out[:b], y_src),
            "ss_mix": q * self._ce(ss_out[b : 2 * b], y_mix),
            "ss_kd": self.args["kd_weight"] * pixel_kd(ss_out[2 * b :], lt_tgt, self.args["temperature"]),
        }
        for name, feats in (("ls", ls_feats), ("ss", ss_feats)):
            if feats is not None:
                losses[f"{name}_fd"] = self._fd(name, feats["encoder"][-1][:b], x_src, y_src)
        if self.args["mic"]:
            x_aug = self._strong_aug(x_tgt) if self.args["mic_aug"] else x_tgt
            x_masked = masked_image(x_aug, self.g, self.args["mic_block"], self.args["mic_ratio"])
            losses["ls_mic"] = q * self._ce(self.ls(x_masked), pseudo)
            losses["ss_mic"] = q * self._ce(self.ss(x_masked), pseudo)
        losses["q"] = q.detach()
        losses["loss"] = sum(v for k, v in losses.items() if k != "q")
        return losses

    def stage3(self, x_src, y_src, x_tgt):
        ignore, b = self._info.ignore_index, x_src.shape[0]
        with torch.no_grad():
            self.ls.eval()
            self.lt.eval()
            pseudo, q = self._pseudo_labels(self.ls(x_tgt))
            x_mix, y_mix = self._mix(x_src, y_src, x_tgt, pseudo)
            soft = self.lt(x_mix)
        # The plain target crops go through SS too, unused by the loss, as in stage 1: a BatchNorm student's
        # running statistics then keep seeing target images. Without them 40 steps of source + mixed batches
        # replace those statistics and the deployed SS fell from 20.0 to 13.4 target mIoU (docs/methods.md).
        ss_out = self.ss(torch.cat([x_src, x_mix, x_tgt]))[: 2 * b]
        valid = y_mix != ignore
        weights = self.weights.to(x_src.device)[y_mix.clamp(max=len(self.weights) - 1)]
        ce = F.cross_entropy(ss_out[b:].float(), y_mix, ignore_index=ignore, reduction="none")
        kd = pixel_kd_map(ss_out[b:], soft, self.args["temperature"])
        count = valid.sum().clamp(min=1) if self.args["ce_average"] == "valid" else valid.numel()
        target = (((2 - weights) * ce + weights * kd) * valid).sum() / count
        losses = {
            "ss_src": self._ce(ss_out[:b], y_src),
            "ss_tgt": q * target,
            "q": q.detach(),
        }
        losses["loss"] = losses["ss_src"] + losses["ss_tgt"]
        return losses

    def after_step(self, step):
        if step < self.n1:  # after step `step` (0-based) LS has taken step + 1 optimiser steps
            self.ema.update(self.ls, step + 1)
        if step == self.n1 - 1:
            self.end_of_pre_adaptation()

    # ---- stage 2 and the stage table -------------------------------------------------------------
    def _device(self) -> torch.device:
        return next(self.ss.parameters()).device

    def _evaluate(self, model) -> float:
        cfg = self.cfg
        res = evaluate(model, self.tgt_val, self._info, self.imgsz, self._device(), cfg.batch, cfg.workers,
                       cfg.eval_mode, cfg.amp, show_progress=False, limit=cfg.val_limit)  # fmt: skip
        model.train()
        return res["miou"]

    def end_of_pre_adaptation(self) -> None:
        """Evaluate the three networks on the target, then compute the class inconsistency (stage 2)."""
        for name, net in (("large teacher LT", self.lt), ("large student LS", self.ls), ("small student SS", self.ss)):
            self.stages.append({"stage": "1 pre-adaptation", "network": name, "miou": self._evaluate(net)})
        self.lt.eval()
        self.ls.eval()
        inc, self.weights = self.inconsistency()
        self.ss.train()
        self.ls.train()
        names = self._info.class_names
        table = {
            names[c]: {"inconsistency": float(inc[c]), "weight": float(self.weights[c])} for c in range(len(names))
        }
        self.stages.append({"stage": "2 inconsistency", "classes": table})

    @torch.no_grad()
    def inconsistency(self) -> tuple[torch.Tensor, torch.Tensor]:
        """I_c = 1 - IoU_c(argmax LT, argmax SS) over the target training images, un-augmented."""
        n, device = self._info.num_classes, self._device()
        view = EvalView(self.tgt, self._info.mean, self._info.std)
        limit = self.args["inconsistency_images"]
        if limit is not None and limit < len(view):
            view = torch.utils.data.Subset(view, range(int(limit)))
        cm = torch.zeros(n, n, dtype=torch.long)
        self.ss.eval()
        for images, _, _ in eval_loader(view, self.cfg.batch, self.cfg.workers):
            for img in images if isinstance(images, list) else [images]:
                img = (img if img.dim() == 4 else img[None]).to(device)
                lt = class_map(infer_logits(self.lt, img, self.imgsz))
                ss = class_map(infer_logits(self.ss, img, self.imgsz))
                cm += confusion_matrix(ss, lt, n, ignore_index=-1)
        return class_inconsistency(cm)


def report(method: DUDA, final: dict, run_dir) -> None:
    """The stage-wise mIoU table and the class inconsistency table, printed and saved (stages.json, CSV)."""
    from rich.table import Table

    from distilkit.engine.report import print_table, report_eval
    from distilkit.utils.files import atomic_write, write_json

    rows = [s for s in method.stages if "miou" in s]
    name = method.report_name
    rows.append({"stage": method.final_stage, "network": "small student SS (deployed)", "miou": final["miou"]})
    table = Table(title=f"{name} on {method.args['tgt']} ({method.tgt_val.split}): target mIoU by stage")
    for col in ("stage", "network", "mIoU"):
        table.add_column(col, justify="right" if col == "mIoU" else "left")
    for r in rows:
        table.add_row(r["stage"], r["network"], f"{100 * r['miou']:.2f}")
    classes = next((s["classes"] for s in method.stages if "classes" in s), None)
    write_json(run_dir / "stages.json", {"stages": rows, "inconsistency": classes})  # saved before anything prints
    print_table(table)
    if classes:
        inc = Table(title="stage 2: class inconsistency I_c = 1 - IoU(LT, SS) and weights I'_c")
        for col in ("class", "I_c", "I'_c", "w_ce = 2 - I'_c", "w_kd = I'_c"):
            inc.add_column(col, justify="left" if col == "class" else "right")
        for name, v in classes.items():
            w = v["weight"]
            inc.add_row(name, f"{v['inconsistency']:.3f}", f"{w:.3f}", f"{2 - w:.3f}", f"{w:.3f}")
        lines = ["class,inconsistency,weight"] + [f"{n},{v['inconsistency']},{v['weight']}" for n, v in classes.items()]
        atomic_write(run_dir / "inconsistency.csv", lambda p: p.write_text("\n".join(lines) + "\n"))
        print_table(inc)
    report_eval(final, run_dir, f"{name} small student on {method.args['tgt']} ({method.tgt_val.split}), final")
    deployed = run_dir / "weights" / "best.safetensors"
    saved = "teacher" in method.extra_checkpoints()  # LT adapted by DUDA, else the --teacher checkpoint as given
    teacher = "large teacher LT: teacher.safetensors" if saved else f"large teacher: {method.args['teacher']}"
    console.print(f"deployed small student: {deployed} (= last.safetensors, the model after the last step; the "
                  f"target's labels only measured it), {teacher}")  # fmt: skip
