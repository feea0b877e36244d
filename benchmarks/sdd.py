"""SDD figures: mIoU of the student alone, with pixel KD and with SDD (same teacher, same schedule), on the
synthetic data and on CamVid day sequences (val), and SDD's step time against pixel KD's. Written to
docs/benchmarks.md.

The teachers are source-trained checkpoints, e.g. those `benchmarks/duda.py` trains:

    python benchmarks/sdd.py --synth-teacher runs/bench-duda/synth-teacher-source/weights/last.safetensors \\
        --camvid ../shared/data/camvid --camvid-teacher runs/bench-duda/camvid-teacher-source/weights/last.safetensors
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import machine, teacher_task_args, write_block  # noqa: E402

from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.trainer import Trainer, run_training  # noqa: E402
from distilkit.methods import build_method  # noqa: E402


def step_times(cfgs: dict[str, TrainConfig], steps: int = 10) -> dict[str, float]:
    """Median seconds of one optimiser step (forward, losses, backward, update) on a fixed batch, for each
    config; steps alternate between the configs, so a slower moment of a shared machine hits all alike."""
    trainers, batches = {}, {}
    for key, cfg in cfgs.items():
        torch.manual_seed(0)
        method = build_method(cfg)
        trainers[key] = Trainer(cfg, method, Path("runs/bench-sdd-steptime"), torch.device("cpu"))
        view = method.train_views()["train"]
        items = [view[(i, i)] for i in range(cfg.batch)]
        x, y = torch.stack([t[0] for t in items]), torch.stack([t[1] for t in items])
        batches[key] = {"train": (x, y, torch.arange(cfg.batch))}
    times: dict[str, list[float]] = {key: [] for key in cfgs}
    for _ in range(steps + 2):
        for key, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_step(batches[key])
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t[2:]) for key, t in times.items()}


def run_task(task: str, data: str, root, teacher: str, imgsz, args) -> dict:
    common = dict(data=data, data_root=root, model=args.student, imgsz=imgsz, iters=args.iters, batch=args.batch,
                  val_every=args.iters, warmup=args.iters // 10, workers=args.workers, device="cpu",
                  seed=args.seed)  # fmt: skip
    out = {"task": task}
    variants = {
        "alone": dict(command="bench-sdd", method="supervised"),
        "kd": dict(command="bench-sdd", method="kd", method_args={"teacher": teacher, "temperature": 4.0}),
        "sdd": dict(command="bench-sdd", method="sdd", method_args={"teacher": teacher, "temperature": 4.0}),
    }
    if not args.step_time_only:
        for key, spec in variants.items():
            results, _, _ = run_training(TrainConfig(**common, **spec), name=f"{task}-{key}")
            out[key] = results["miou"]
    steps = step_times({key: TrainConfig(**common, **variants[key]) for key in ("kd", "sdd")})
    out.update({f"{key}_step_s": v for key, v in steps.items()})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher_task_args(p)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--step-time-only", action="store_true", help="measure only the step times (block sdd-step)")
    args = p.parse_args()

    rows = [run_task("synth", "synth-gta", None, args.synth_teacher, None, args)]
    if args.camvid and args.camvid_teacher:
        rows.append(run_task("camvid", "camvid-day", args.camvid, args.camvid_teacher, tuple(args.camvid_imgsz), args))
    cmd = " ".join(["python", "benchmarks/sdd.py", *sys.argv[1:]])
    names = {"synth": "synth-gta (val)", "camvid": "CamVid day (0016E5 val)"}

    def step_cell(r: dict) -> str:
        ratio = r["sdd_step_s"] / r["kd_step_s"]
        return f"{ratio:.2f} ({1000 * r['sdd_step_s']:.0f} vs {1000 * r['kd_step_s']:.0f} ms)"

    if args.step_time_only:
        lines = [
            f"Measured with `{cmd}` on {machine()}: median of 10 optimiser steps (teacher forward, student forward "
            f"and backward, losses, update) of {args.student} at batch {args.batch}, KD and SDD steps alternating.",
            "",
            "| data | SDD step / KD step |",
            "|---|---|",
            *(f"| {names[r['task']]} | {step_cell(r)} |" for r in rows),
        ]
        block = "sdd-step"
    else:
        lines = [
            f"Measured with `{cmd}` on {machine()}. Student {args.student}, {args.iters} iterations at batch "
            f"{args.batch}, same seed and schedule for all three; the teacher is frozen. mIoU (%) on the val split:",
            "",
            "| data | student alone | + pixel KD (T = 4) | + SDD (M = 1, 2, 4; beta = 2) | SDD step / KD step |",
            "|---|---|---|---|---|",
            *(f"| {names[r['task']]} | {100 * r['alone']:.1f} | {100 * r['kd']:.1f} | {100 * r['sdd']:.1f} "
              f"| {step_cell(r)} |" for r in rows),
        ]  # fmt: skip
        block = "sdd"
    print("\n".join(lines))
    print(f"written to {write_block('benchmarks.md', block, chr(10).join(lines))}")


if __name__ == "__main__":
    main()
