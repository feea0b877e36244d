"""Does DUDA adapt, or is it just more training? Source-only models, an equal-step control and DUDA, measured on
the target by one evaluator. `distilkit demo` and benchmarks/duda.py both run through here.

Arms, in order: the large and the small model trained on the labelled source (train-teacher's engine); the
control, the small source model trained further on the source alone for as many steps as DUDA gives it (so a
gain over it is adaptation, not extra steps); optionally the same control on FDA-restyled source crops (the
simplest use of the target images); optionally the small model distilled from the large source model on target
crops with DUDA's schedule and KD term but no adaptation (methods/target_kd.py: how much of DUDA's gain is plain
KD on target images); DUDA warm-started from the two source models. The target's labels only measure. Each arm
is a run directory; with `reuse`, a finished run of exactly the same experiment is kept (DUDA's with its stage
table, duda.json).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path


@dataclass
class UdaComparison:
    """The whole experiment: data, the two architectures, both schedules, DUDA's options, where the runs go."""

    src: str
    tgt: str
    large: str
    small: str
    out: Path  # run directories: out / f"{prefix}{role}{suffix}"
    tgt_split: str = "val"  # the target split scored (CamVid dusk has only train)
    data_root: str | None = None
    imgsz: tuple[int, int] | None = None
    pretrained: str | None = None
    source_iters: int = 400
    large_source_iters: int | None = None  # the large model's source schedule (None: source_iters)
    source_batch: int = 8
    source_lr: float = 6e-4
    duda_iters: int = 200  # pre-adaptation (stage 1)
    stage3_iters: int | None = None  # fine-tuning (stage 3); None: as many as stage 1
    duda_batch: int = 4
    lr: float = 6e-5
    head_lr_mult: float = 10.0
    aug: dict = field(default_factory=dict)  # photometric augmentation of every source crop, in every arm
    duda_args: dict = field(default_factory=dict)  # DUDA's own options (strong_aug, style, pseudo_keep, ...)
    styled_control: bool = False  # also the control on FDA-restyled source crops (with style="fda")
    kd_control: bool = False  # also target KD: the large source model distilled on target crops, no adaptation
    val_limit: int | None = None  # target images scored (None: the whole split)
    workers: int = 1
    device: str = "cpu"
    seed: int = 0
    large_seed: int | None = None  # the large source model's seed; set, its run is shared by every `seed`
    prefix: str = ""
    suffix: str = ""
    reuse: bool = True
    command: str = "uda-compare"  # recorded in every run (a reused run must be of the same command)

    def run_dir(self, role: str) -> Path:
        return self.out / f"{self.prefix}{role}{self.suffix}"

    def source_dir(self, role: str) -> Path:
        """A source model's run: the large one of a shared `large_seed` is named by that seed, not by `suffix`."""
        if role == "teacher" and self.large_seed is not None:
            return self.out / f"{self.prefix}teacher-source-s{self.large_seed}"
        return self.run_dir(f"{role}-source")

    @property
    def large_iters(self) -> int:
        return self.large_source_iters or self.source_iters

    @property
    def adapt_iters(self) -> int:
        """The steps DUDA gives the small student (both stages), and so the control too."""
        return self.duda_iters + (self.duda_iters if self.stage3_iters is None else self.stage3_iters)


def _common(c: UdaComparison) -> dict:
    return dict(data_root=c.data_root, imgsz=c.imgsz, workers=c.workers, device=c.device, seed=c.seed)


def _trained(cfg, run: Path, reuse: bool):
    """(model, method, seconds) of `cfg` at `run`: a finished run of exactly this experiment is loaded with
    `reuse` (seconds nan), otherwise it is trained there."""
    from distilkit.engine.checkpoint import load_model
    from distilkit.engine.compare import run_finished
    from distilkit.engine.trainer import run_training
    from distilkit.methods import build_method

    if reuse and run_finished(run, cfg):
        return load_model(run / "weights" / "last.safetensors")[0], build_method(cfg), float("nan")
    start = time.perf_counter()
    _, _, method = run_training(cfg, out=run, exist_ok=True)
    return method.student(), method, time.perf_counter() - start


def run_comparison(c: UdaComparison) -> dict:
    """Train (or reuse) every arm and score it on the target: mIoU in [0, 1] per arm, DUDA's stage table, the
    seconds each arm trained (nan: reused; a reused DUDA run's are those it recorded) and the deployed student's
    checkpoint."""
    from distilkit.data import build_dataset
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.validator import evaluate
    from distilkit.utils.device import select_device

    target, device = build_dataset(c.tgt, c.tgt_split, c.data_root), select_device(c.device)

    def score(model, method) -> float:  # one target set, one evaluator for every arm
        return evaluate(model.to(device).eval(), target, method.info(), method.imgsz, device, 8, 0,
                        show_progress=False, limit=c.val_limit)["miou"]  # fmt: skip

    common, out, times, ckpts = _common(c), {}, {}, {}
    large_seed = c.seed if c.large_seed is None else c.large_seed
    for role, arch, iters, seed in (("teacher", c.large, c.large_iters, large_seed),
                                    ("student", c.small, c.source_iters, c.seed)):  # fmt: skip
        cfg = TrainConfig(command=c.command, data=c.src, model=arch, iters=iters, batch=c.source_batch,
                          lr=c.source_lr, val_every=iters, warmup=iters // 10, val_limit=c.val_limit,
                          method_args={"aug": c.aug}, pretrained=c.pretrained, **{**common, "seed": seed})  # fmt: skip
        shared = role == "teacher" and large_seed != c.seed  # trained by the comparison at its own seed
        model, method, times[role] = _trained(cfg, c.source_dir(role), c.reuse or shared)
        out[f"{role}_source_only"] = score(model, method)
        ckpts[role] = c.source_dir(role) / "weights" / "last.safetensors"
    n1, n3 = c.duda_iters, c.adapt_iters - c.duda_iters
    controls = {"student_continued": ("student-continued", {})}
    if c.styled_control:
        style = {k: c.duda_args[k] for k in ("style", "fda_beta") if k in c.duda_args}
        controls["student_continued_styled"] = ("student-continued-fda", {**style, "style_target": c.tgt})
    for key, (role, style) in controls.items():
        cfg = TrainConfig(command=c.command, data=c.src, model=c.small, iters=n1 + n3, batch=c.duda_batch,
                          lr=c.lr, head_lr_mult=c.head_lr_mult, warmup=n1 // 10, val_every=n1 + n3,
                          val_limit=c.val_limit, method_args={"weights": str(ckpts["student"]), "aug": c.aug, **style},
                          **common)  # fmt: skip
        model, method, times[role] = _trained(cfg, c.run_dir(role), c.reuse)
        out[key] = score(model, method)
    duda_args = dict(tgt=c.tgt, teacher=str(ckpts["teacher"]), student=str(ckpts["student"]), stage1_iters=n1,
                     stage3_iters=n3, tgt_val_split=c.tgt_split, aug=c.aug, **c.duda_args)  # fmt: skip
    cfg = TrainConfig(command=c.command, method="duda", data=c.src, val_data=c.tgt, model=c.small, iters=n1 + n3,
                      batch=c.duda_batch, lr=c.lr, head_lr_mult=c.head_lr_mult, warmup=n1 // 10, val_every=n1,
                      val_limit=c.val_limit, method_args=duda_args, **common)  # fmt: skip
    if c.kd_control:
        model, method, times["target-kd"] = _trained(replace(cfg, method="target-kd"), c.run_dir("student-target-kd"),
                                                     c.reuse)  # fmt: skip
        out["student_target_kd"] = score(model, method)
    student, teacher, method, stages, times["duda"] = _duda(cfg, c.run_dir("duda"), c.reuse)
    out["duda_student"] = score(student, method)
    out["duda_teacher"] = score(teacher, method)
    out["stages"] = stages
    out["times_s"] = times
    out["deployed"] = str(c.run_dir("duda") / "weights" / "last.safetensors")
    return out


def _duda(cfg, run: Path, reuse: bool):
    """(deployed SS, LT, method, stage table, seconds) of the DUDA run `cfg` at `run` (`_trained`'s, plus what it
    recorded in duda.json when it trained: a reused run keeps its stage table and seconds)."""
    from distilkit.engine.checkpoint import load_model
    from distilkit.utils.files import write_json

    record = run / "duda.json"
    student, method, seconds = _trained(cfg, run, reuse and record.is_file())
    if math.isnan(seconds):  # reused
        done = json.loads(record.read_text())
        return student, load_model(run / "weights" / "teacher.safetensors")[0], method, done["stages"], done["seconds"]
    write_json(record, {"stages": method.stages, "seconds": seconds})
    return student, method.lt, method, method.stages, seconds
