"""DUDA figures: target mIoU of (a) the small student trained on the source only, (b) the large teacher,
(c) the DUDA small student, on synth-gta -> synth-city and on CamVid day -> dusk. Written to
docs/benchmarks.md.

For each task, in one run: train the large model and the small model on the source (train-teacher's
engine), then run DUDA warm-started from them (`--teacher`, `--student`), and evaluate everything on the
target with the same evaluator. A control continues the small source model on the source alone for as many
steps as DUDA gives it (`train-teacher --weights`), so the gain is adaptation, not extra training. CamVid's
dusk labels are used only to measure.

    python benchmarks/duda.py --camvid ../shared/data/camvid
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import augment_args, augment_of, finished, machine, write_block  # noqa: E402

from distilkit.data import build_dataset  # noqa: E402
from distilkit.engine.checkpoint import load_model  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.trainer import run_training  # noqa: E402
from distilkit.engine.validator import evaluate  # noqa: E402
from distilkit.methods import build_method  # noqa: E402


def target_miou(model, method, tgt: str, split: str, root) -> float:
    ds = build_dataset(tgt, split, root)
    return evaluate(model.eval(), ds, method.info(), method.imgsz, torch.device("cpu"), 8, 0, show_progress=False)[
        "miou"
    ]


def trained(cfg: TrainConfig, run: Path, reuse: bool):
    """(model, method, seconds) of the run `cfg` at `run`: with `reuse`, a finished run of exactly this
    experiment is loaded (same seed, same result; seconds nan), otherwise it is trained there."""
    if reuse and finished(run, cfg):
        return load_model(run / "weights" / "last.safetensors")[0], build_method(cfg), float("nan")
    start = time.perf_counter()
    _, _, method = run_training(cfg, name=run.name, exist_ok=True)
    return method.student(), method, time.perf_counter() - start


def run_task(task: str, src: str, tgt: str, split: str, root, imgsz, args) -> dict:
    aug = augment_of(args)  # every source crop, in every arm
    common = dict(data_root=root, imgsz=imgsz, workers=args.workers, device="cpu", seed=args.seed)
    out, times = {"task": task}, {}
    ckpts = {}
    for role, arch in (("teacher", args.teacher_model), ("student", args.student_model)):
        cfg = TrainConfig(command="bench-duda", data=src, model=arch, iters=args.source_iters, batch=args.batch,
                          val_every=args.source_iters, warmup=args.source_iters // 10, method_args={"aug": aug},
                          pretrained=args.pretrained, **common)  # fmt: skip
        run = Path("runs") / "bench-duda" / f"{task}-{role}-source{args.tag}"
        model, method, times[role] = trained(cfg, run, args.reuse)
        out[f"{role}_source_only"] = target_miou(model, method, tgt, split, root)
        ckpts[role] = run / "weights" / "last.safetensors"
    n = args.duda_iters
    controls = {"student_continued": ("", {})}
    if args.style:  # the simplest use of the target images: (a) continued on source crops in the target's look
        controls["student_continued_styled"] = (
            "-fda",
            dict(style=args.style, style_target=tgt, fda_beta=args.fda_beta),
        )
    for key, (suffix, style) in controls.items():
        cfg = TrainConfig(command="bench-duda", data=src, model=args.student_model, iters=2 * n, batch=args.duda_batch,
                          lr=args.lr, head_lr_mult=args.head_lr_mult, warmup=n // 10, val_every=2 * n,
                          method_args={"weights": str(ckpts["student"]), "aug": aug, **style}, **common)  # fmt: skip
        control = Path("runs") / "bench-duda" / f"{task}-student-continued{suffix}{args.tag}"
        model, method, times[f"control{suffix}"] = trained(cfg, control, args.reuse)
        out[key] = target_miou(model, method, tgt, split, root)
    cfg = TrainConfig(
        command="bench-duda", method="duda", data=src, val_data=tgt, model=args.student_model, iters=2 * n,
        batch=args.duda_batch, lr=args.lr, head_lr_mult=args.head_lr_mult, warmup=n // 10, val_every=n,
        method_args=dict(tgt=tgt, teacher=str(ckpts["teacher"]), student=str(ckpts["student"]), stage1_iters=n,
                         stage3_iters=n, teacher_lr_mult=args.teacher_lr_mult,
                         inconsistency_images=args.inconsistency_images, tgt_val_split=split,
                         strong_aug=args.strong_aug, style=args.style, fda_beta=args.fda_beta, mic=args.mic,
                         pseudo_keep=args.pseudo_keep, fd_weight=args.fd_weight, ce_average=args.ce_average,
                         aug=aug),
        **common,
    )  # fmt: skip
    start = time.perf_counter()
    _, run_dir, method = run_training(cfg, name=f"{task}-duda{args.tag}")  # a new run dir each time
    times["duda"] = time.perf_counter() - start
    out["duda_student"] = target_miou(method.student(), method, tgt, split, root)
    out["duda_teacher"] = target_miou(method.lt, method, tgt, split, root)
    out["stages"] = method.stages
    out["times_s"] = times
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-model", default="segformer-b1")
    p.add_argument("--student-model", default="segformer-b0")
    p.add_argument("--source-iters", type=int, default=400)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--duda-iters", type=int, default=200, help="per stage (pre-adaptation and fine-tuning)")
    p.add_argument("--duda-batch", type=int, default=4)
    p.add_argument("--inconsistency-images", type=int, default=200)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--camvid", help="CamVid root: also day (0006R0 + 0016E5) -> dusk (0001TP)")
    p.add_argument("--camvid-imgsz", type=int, nargs=2, default=[192, 256])
    p.add_argument("--lr", type=float, default=6e-5, help="DUDA's AdamW lr (the paper's)")
    p.add_argument("--head-lr-mult", type=float, default=10.0)
    p.add_argument("--teacher-lr-mult", type=float, default=1.0, help="LS's lr multiplier")
    p.add_argument("--style", choices=["fda"], help="FDA-restyled source images in DUDA")
    p.add_argument("--fda-beta", type=float, default=0.01, help="FDA's low-frequency band")
    p.add_argument("--strong-aug", action="store_true", help="colour jitter and blur on mixed images")
    p.add_argument("--pseudo-keep", type=float, default=1.0, help="class-balanced pseudo-labels (1: off)")
    p.add_argument("--mic", action="store_true", help="MIC masked-image consistency in pre-adaptation")
    p.add_argument(
        "--pretrained", choices=["imagenet"], help="source models from ImageNet encoders (EfficientNet-Lite)"
    )
    p.add_argument(
        "--fd-weight", type=float, default=0.0, help="DAFormer's ImageNet feature distance (needs --pretrained)"
    )
    p.add_argument("--ce-average", choices=["valid", "all"], default="valid", help="DUDA's CE averaging")
    augment_args(p)
    p.add_argument("--reuse", action="store_true", help="reuse the source models and the control an earlier run made")
    p.add_argument("--skip-synth", action="store_true")
    p.add_argument("--tag", default="", help="suffix of the run directories and the docs block (another setting)")
    args = p.parse_args()
    if not 0 < args.pseudo_keep <= 1:  # before hours of source training, not after
        p.error(f"--pseudo-keep {args.pseudo_keep}: expected a fraction in (0, 1]")

    rows = []
    if not args.skip_synth:
        rows.append(run_task("synth", "synth-gta", "synth-city", "val", None, None, args))
    if args.camvid:
        rows.append(
            run_task("camvid", "camvid-day", "camvid-dusk", "train", args.camvid, tuple(args.camvid_imgsz), args)
        )
    cmd = " ".join(["python", "benchmarks/duda.py", *sys.argv[1:]])
    Path("runs").mkdir(exist_ok=True)
    for r in rows:  # one block per task: each figure beside the command that made it
        Path(f"runs/bench-duda-{r['task']}{args.tag}.json").write_text(json.dumps(r, indent=2))
        body = "\n".join(task_lines(r, cmd, args))
        print(body)
        block = f"duda-{r['task']}{args.tag}"
        print(f"written to {write_block('benchmarks.md', block, body)}")


def task_lines(r: dict, cmd: str, args) -> list[str]:
    names = {"synth": "synth-gta -> synth-city (val)", "camvid": "CamVid day -> dusk (0001TP)"}
    keys = ("student_source_only", "student_continued", "teacher_source_only", "duda_teacher", "duda_student")
    a, a2, t, b, c = (100 * r[k] for k in keys)
    columns = [("task", names[r["task"]]), ("(a) small, source only", f"{a:.1f}"),
               ("(a') (a) + as many source steps", f"{a2:.1f}")]  # fmt: skip
    styled = r.get("student_continued_styled")  # only with --style
    if styled is not None:
        styled *= 100
        columns.append(("(a'') (a') on FDA-restyled source", f"{styled:.1f}"))
    columns += [("large, source only", f"{t:.1f}"), ("(b) large teacher after DUDA", f"{b:.1f}"),
                ("(c) DUDA small student", f"{c:.1f}"), ("(c) - (a)", f"{c - a:+.1f}"),
                ("(c) - (a')", f"{c - a2:+.1f}")]  # fmt: skip
    if styled is not None:
        columns.append(("(c) - (a'')", f"{c - styled:+.1f}"))
    columns.append(("(b) - (c)", f"{b - c:+.1f}"))
    stage = ", ".join(f"{s['network']} {100 * s['miou']:.1f}" for s in r["stages"] if "miou" in s)
    mins = ", ".join(f"{k} {v / 60:.1f} min" for k, v in r["times_s"].items() if v == v)  # nan: reused
    styled_note = (
        ", (a'') the same on source crops restyled by FDA with random target images" if styled is not None else ""
    )
    return [
        f"Measured with `{cmd}` on {machine()}. Large model {args.teacher_model}, small {args.student_model}; "
        f"source training {args.source_iters} iterations at batch {args.batch}; DUDA {args.duda_iters} + "
        f"{args.duda_iters} iterations at batch {args.duda_batch} per domain, all three networks warm-started from "
        f"the source-trained models; (a') continues (a) on the source alone for the same {2 * args.duda_iters} "
        f"steps at batch {args.duda_batch}{styled_note}; source crops in every arm: jitter {args.jitter}, hue "
        f"{args.hue}, greyscale p = {args.grey}; "
        + ("ImageNet encoders" if args.pretrained else "no pretrained encoders")
        + ". Target mIoU (%):",
        "",
        "| " + " | ".join(name for name, _ in columns) + " |",
        "|" + "---|" * len(columns),
        "| " + " | ".join(value for _, value in columns) + " |",
        "",
        f"After pre-adaptation: {stage}. Training time: {mins}.",
    ]


if __name__ == "__main__":
    main()
