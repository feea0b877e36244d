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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import augment_args, augment_of, machine, write_block  # noqa: E402

from distilkit.engine.uda_compare import UdaComparison, run_comparison  # noqa: E402


def run_task(task: str, src: str, tgt: str, split: str, root, imgsz, args) -> dict:
    """One task's arms through the comparison `distilkit demo` also runs (distilkit/engine/uda_compare.py)."""
    duda_args = dict(teacher_lr_mult=args.teacher_lr_mult, inconsistency_images=args.inconsistency_images,
                     strong_aug=args.strong_aug, style=args.style, fda_beta=args.fda_beta, mic=args.mic,
                     pseudo_keep=args.pseudo_keep, fd_weight=args.fd_weight, ce_average=args.ce_average)  # fmt: skip
    c = UdaComparison(src=src, tgt=tgt, large=args.teacher_model, small=args.student_model, out=Path("runs/bench-duda"),
                      tgt_split=split, data_root=root, imgsz=imgsz, pretrained=args.pretrained,
                      source_iters=args.source_iters, source_batch=args.batch, duda_iters=args.duda_iters,
                      duda_batch=args.duda_batch, lr=args.lr, head_lr_mult=args.head_lr_mult, aug=augment_of(args),
                      duda_args=duda_args, styled_control=bool(args.style), workers=args.workers, seed=args.seed,
                      prefix=f"{task}-", suffix=args.tag, reuse=args.reuse, command="bench-duda")  # fmt: skip
    return {"task": task, **run_comparison(c)}


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
