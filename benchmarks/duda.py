"""DUDA figures: target mIoU of (a) the small student trained on the source only, (b) the large teacher,
(c) the DUDA small student, on synth-gta -> synth-city and on CamVid day -> dusk. Written to
docs/benchmarks.md.

For each task, in one run: train the large model and the small model on the source (train-teacher's
engine), then run DUDA warm-started from them (`--teacher`, `--student`), and evaluate everything on the
target with the same evaluator. A control continues the small source model on the source alone for as many
steps as DUDA gives it (`train-teacher --weights`), so the gain is adaptation, not extra training; with
`--kd-control`, another distils the large source model into it on target crops with DUDA's schedule and KD
term but no adaptation, so a gain over it is what DUDA's self-training adds to plain KD on target images.
CamVid's dusk labels are used only to measure.

With several `--seeds`, the small source model, the controls and DUDA run once per seed and the large source
model is trained once, at the first seed, and shared (as the proof table trains its teacher once): the seeds
measure the spread of what is deployed. Results also go to docs/results/duda-<task><tag>.json.

    python benchmarks/duda.py --camvid ../shared/data/camvid
    python benchmarks/duda.py --skip-synth --camvid ../shared/data/camvid --pretrained imagenet --seeds 0 1 2 --reuse
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import DOCS, augment_args, augment_of, machine, mean_std, write_block  # noqa: E402

from distilkit.engine.uda_compare import UdaComparison, run_comparison  # noqa: E402


def run_task(task: str, src: str, tgt: str, split: str, root, imgsz, args, seed: int) -> dict:
    """One task's arms at one seed through the comparison `distilkit demo` also runs (engine/uda_compare.py)."""
    duda_args = dict(teacher_lr_mult=args.teacher_lr_mult, inconsistency_images=args.inconsistency_images,
                     strong_aug=args.strong_aug, style=args.style, fda_beta=args.fda_beta, mic=args.mic,
                     pseudo_keep=args.pseudo_keep, fd_weight=args.fd_weight, ce_average=args.ce_average)  # fmt: skip
    many = len(args.seeds) > 1
    c = UdaComparison(src=src, tgt=tgt, large=args.teacher_model, small=args.student_model, out=Path("runs/bench-duda"),
                      tgt_split=split, data_root=root, imgsz=imgsz, pretrained=args.pretrained,
                      source_iters=args.source_iters, large_source_iters=args.large_source_iters,
                      source_batch=args.batch, duda_iters=args.duda_iters,
                      duda_batch=args.duda_batch, lr=args.lr, head_lr_mult=args.head_lr_mult, aug=augment_of(args),
                      duda_args=duda_args, styled_control=bool(args.style), kd_control=args.kd_control,
                      workers=args.workers, seed=seed,
                      large_seed=args.seeds[0] if many else None, prefix=f"{task}{args.tag}-",
                      suffix=f"-s{seed}" if many else "", reuse=args.reuse, command="bench-duda")  # fmt: skip
    return {"task": task, "seed": seed, **run_comparison(c)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher-model", default="segformer-b1")
    p.add_argument("--student-model", default="segformer-b0")
    p.add_argument("--source-iters", type=int, default=400)
    p.add_argument("--large-source-iters", type=int, help="the large model's source schedule (default: --source-iters)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--duda-iters", type=int, default=200, help="per stage (pre-adaptation and fine-tuning)")
    p.add_argument("--duda-batch", type=int, default=4)
    p.add_argument("--inconsistency-images", type=int, default=200)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="several: the large source model is shared")
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
    p.add_argument("--kd-control", action="store_true", help="also KD from the large source model on target crops")
    augment_args(p)
    p.add_argument("--reuse", action="store_true", help="reuse the source models and the control an earlier run made")
    p.add_argument("--skip-synth", action="store_true")
    p.add_argument("--table-only", action="store_true", help="write the docs block from docs/results/duda-*.json")
    p.add_argument("--tag", default="", help="suffix of the run directories and the docs block (another setting)")
    args = p.parse_args()
    if not 0 < args.pseudo_keep <= 1:  # before hours of source training, not after
        p.error(f"--pseudo-keep {args.pseudo_keep}: expected a fraction in (0, 1]")

    tasks = [] if args.skip_synth else [("synth", "synth-gta", "synth-city", "val", None, None)]
    if args.camvid:
        tasks.append(("camvid", "camvid-day", "camvid-dusk", "train", args.camvid, tuple(args.camvid_imgsz)))
    cmd = " ".join(["python", "benchmarks/duda.py", *(a for a in sys.argv[1:] if a != "--table-only")])
    for task in tasks:  # one block per task: each figure beside the command that made it
        name = f"duda-{task[0]}{args.tag}"
        if args.table_only:  # the block again from the recorded results (of the same command)
            recorded = DOCS / "results" / f"{name}.json"
            if not recorded.is_file():
                sys.exit(f"--table-only: no recorded results at {recorded}; run without --table-only first")
            rows = json.loads(recorded.read_text())["seeds"]
            print(f"written to {write_block('benchmarks.md', name, chr(10).join(task_lines(rows, cmd, args)))}")
            continue
        rows = []
        for seed in args.seeds:
            rows.append(run_task(*task, args, seed))
            (DOCS / "results" / f"{name}.json").write_text(json.dumps({"command": cmd, "seeds": rows}, indent=2))
            body = "\n".join(task_lines(rows, cmd, args))  # after each seed: a stopped run keeps its figures
            print(body)
            print(f"written to {write_block('benchmarks.md', name, body)}")


KEYS = {"teacher_source_only": "large, source only", "student_source_only": "(a) small, source only",
        "student_continued": "(a') (a) + as many source steps",
        "student_continued_styled": "(a'') (a') on FDA-restyled source",
        "student_target_kd": "(a''') KD from the large source model on target crops",
        "duda_teacher": "(b) large teacher LT after DUDA", "duda_student": "(c) DUDA small student"}  # fmt: skip
GAINS = {"(c) - (a)": ("student_source_only", 5.0), "(c) - (a')": ("student_continued", 2.0),
         "(c) - (a'')": ("student_continued_styled", None), "(c) - (a''')": ("student_target_kd", None)}  # fmt: skip


def task_lines(rows: list[dict], cmd: str, args) -> list[str]:
    """One row per seed, the mean +- std, and each of the issue's targets as met or missed (on the means)."""
    names = {"synth": "synth-gta -> synth-city (val)", "camvid": "CamVid day -> dusk (0001TP)"}
    keys = [k for k in KEYS if rows[0].get(k) is not None]
    gains = {g: (k, t) for g, (k, t) in GAINS.items() if k in keys}
    pct = {k: [100 * r[k] for r in rows] for k in keys}  # each column's per-seed values
    diffs = {g: [c - a for c, a in zip(pct["duda_student"], pct[k], strict=True)] for g, (k, _) in gains.items()}
    shares = [c / b for c, b in zip(pct["duda_student"], pct["duda_teacher"], strict=True)]
    cols = ["seed", *(KEYS[k] for k in keys), *gains, "(c) / (b)", "DUDA min"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for i, r in enumerate(rows):
        cells = [str(r["seed"]), *(f"{pct[k][i]:.1f}" for k in keys), *(f"{d[i]:+.1f}" for d in diffs.values()),
                 f"{shares[i]:.1%}", f"{r['times_s']['duda'] / 60:.1f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if len(rows) > 1:
        cells = ["mean +- std", *(mean_std(pct[k]) for k in keys), *(mean_std(d) for d in diffs.values()),
                 f"{statistics.mean(shares):.1%}", ""]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    targets = []
    for gain, (_, need) in gains.items():
        if need is not None:
            got, ahead = statistics.mean(diffs[gain]), sum(d >= need for d in diffs[gain])
            targets.append(f"{gain} >= {need:.0f}: {got:+.1f}, {'met' if got >= need else 'missed'} "
                           f"({ahead} of {len(rows)} seeds)")  # fmt: skip
    share = statistics.mean(pct["duda_student"]) / statistics.mean(pct["duda_teacher"])
    targets.append(f"(c) >= 95% of LT (mean over mean): {share:.1%}, {'met' if share >= 0.95 else 'missed'}")
    stage = "; ".join(f"seed {r['seed']}: " + ", ".join(f"{s['network']} {100 * s['miou']:.1f}" for s in r["stages"]
                      if "miou" in s) for r in rows)  # fmt: skip
    shared = f"the large source model trained once (seed {args.seeds[0]}) and shared; " if len(args.seeds) > 1 else ""
    large_iters = args.large_source_iters or args.source_iters
    return [
        f"Measured with `{cmd}` on {machine()}. {names[rows[0]['task']]}. Large model {args.teacher_model} "
        f"({large_iters} source iterations), small {args.student_model} ({args.source_iters}), batch {args.batch}; "
        f"{shared}DUDA {args.duda_iters} + {args.duda_iters} iterations at batch {args.duda_batch} per domain, all "
        f"three networks warm-started from the source-trained models; (a') continues (a) on the source alone for "
        f"the same {2 * args.duda_iters} steps at batch {args.duda_batch}"
        + (
            ", (a'') the same on source crops restyled by FDA with random target images"
            if "(c) - (a'')" in gains
            else ""
        )
        + (
            ", (a''') (a) distilled from the large source model on target crops with DUDA's schedule and stage 1 KD "
            "term, without self-training"
            if "(c) - (a''')" in gains
            else ""
        )
        + f"; source crops in every arm: jitter {args.jitter}, hue {args.hue}, greyscale p = {args.grey}; "
        + ("ImageNet encoders" if args.pretrained else "no pretrained encoders")
        + ". Target mIoU (%):",
        "",
        *lines,
        "",
        "Targets (on the means): " + "; ".join(targets) + ".",
        "",
        f"After pre-adaptation: {stage}.",
    ]


if __name__ == "__main__":
    main()
