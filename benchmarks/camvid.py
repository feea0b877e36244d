"""The proof table: does each distillation method make a real student better on CamVid, across seeds?

CamVid 11 classes (`--data camvid`): the standard 367 training frames, mIoU on the 101 val frames (whole images
at the training scale). One ImageNet-pretrained teacher (trained once, longer); three students, each trained
alone and with every method under the same schedule, data order per seed and evaluation:

  (i)   lite0:   deeplabv3plus-efficientnet-lite0, ImageNet encoder (the realistic edge student)
  (ii)  fastlite: fastlitessnet from random init (HDL's pair)
  (iii) b0:      segformer-b0 from random init (no pretrained weights at hand)

Every arm is a run directory under runs/bench-camvid/ and is kept (`--reuse` takes finished arms of exactly the
same experiment, so a stopped table continues where it stopped). The table goes to docs/benchmarks.md, the
per-arm results to docs/results/camvid.json, the plot to docs/img/camvid.png.

    python benchmarks/camvid.py --camvid ../shared/data/camvid --reuse                 # the whole table
    python benchmarks/camvid.py --camvid ../shared/data/camvid --reuse --students lite0 --methods alone kd
    python benchmarks/camvid.py --camvid ../shared/data/camvid --table-only            # rewrite docs from runs
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import DOCS, finished, machine, write_block  # noqa: E402

from distilkit.engine.config import TrainConfig  # noqa: E402

STUDENTS = {  # key: (model, --pretrained)
    "lite0": ("deeplabv3plus-efficientnet-lite0", "imagenet"),
    "fastlite": ("fastlitessnet", None),
    "b0": ("segformer-b0", None),
}
METHODS = ["alone", "kd", "sdd", "cwd", "hdl", "sakd"]
LABELS = {"alone": "student alone", "kd": "pixel KD", "sdd": "SDD", "cwd": "CWD", "hdl": "HDL",
          "sakd": "SAKD r = 0.5"}  # fmt: skip
GAIN = 1.0  # the target: a method's mean >= the student alone + 1.0 mIoU


def base_config(args, **kw) -> TrainConfig:
    """What every arm shares: data, crop, batch, optimiser, schedule, augmentation, evaluation."""
    iters = kw.pop("iters", args.iters)
    common = dict(command="bench-camvid", data="camvid", data_root=args.camvid, imgsz=tuple(args.imgsz),
                  batch=args.batch, iters=iters, lr=args.lr, warmup=iters // 10, val_every=10**9,
                  workers=args.workers, device="cpu")  # fmt: skip
    return TrainConfig(**{**common, **kw})


def arm(args, run_dir: Path, cfg: TrainConfig) -> dict:
    """Train one arm (unless `--reuse` finds it finished) and return its row."""
    if not (args.reuse and finished(run_dir, cfg) and (run_dir / "bench.json").is_file()):
        from distilkit.engine.trainer import run_training

        start = time.perf_counter()
        results, _, method = run_training(cfg, out=run_dir, exist_ok=True)
        row = {"miou": 100 * results["miou"], "train_s": results["train_time_s"], "wall_s": time.perf_counter() - start,
               "iters": method.cfg.iters,
               "per_class": {k: 100 * v["iou"] for k, v in results.get("per_class", {}).items()}}  # fmt: skip
        (run_dir / "bench.json").write_text(json.dumps(row, indent=1))
    row = json.loads((run_dir / "bench.json").read_text())
    print(f"{run_dir.name:40} mIoU {row['miou']:6.2f}  train {row['train_s'] / 60:5.1f} min", flush=True)
    return {**row, "checkpoint": str(run_dir / "weights" / "last.safetensors")}


def teacher_arm(args) -> dict:
    cfg = base_config(args, model=args.teacher, pretrained="imagenet", iters=args.teacher_iters, seed=0,
                      method_args={"aug": {"jitter": args.jitter}})  # fmt: skip
    return arm(args, args.out / f"teacher-{args.teacher}-{args.teacher_iters}", cfg)


def method_args(method: str, teacher: str, base: str, args) -> tuple[str, dict]:
    """(engine method, its arguments) of one arm."""
    aug = {"aug": {"jitter": args.jitter}}
    if method == "alone":
        return "supervised", aug
    if method == "sakd":  # r = 0.5 for as many epochs as the other arms: half their steps
        epochs = max(1, round(args.iters * args.batch / 367))
        return "sakd", {**aug, "teacher": teacher, "base": base, "ratio": 0.5, "epochs": epochs}
    return method, {**aug, "teacher": teacher}


def student_arms(args, student: str, teacher: str) -> None:
    model, pretrained = STUDENTS[student]
    for method in args.methods:
        seeds = args.seeds[: args.sakd_seeds] if method == "sakd" else args.seeds
        base = best_base(collect(args.out)[1], student) if method == "sakd" else ""
        if method == "sakd" and not base:
            print(f"{student}: SAKD waits for its bases' seeds", flush=True)
            continue
        for seed in seeds:
            name, extra = method_args(method, teacher, base, args)
            cfg = base_config(args, method=name, model=model, pretrained=pretrained, seed=seed, method_args=extra)
            tag = f"{method}-{base}" if base else method
            arm(args, args.out / f"{student}-{tag}-s{seed}", cfg)


def best_base(rows: list, student: str) -> str:
    """The base with the best mean mIoU over its finished seeds (ties: the cheaper by train time)."""
    means = {}
    for m in ("kd", "sdd", "cwd", "hdl"):
        got = [r for r in rows if r["student"] == student and r["method"] == m]
        if len(got) >= 1:
            means[m] = (statistics.mean(r["miou"] for r in got), -statistics.mean(r["train_s"] for r in got))
    return max(means, key=means.get) if means else ""


def collect(out: Path) -> tuple[dict | None, list]:
    """Every finished arm on disk (for --table-only and for arms run by earlier sessions)."""
    teacher, rows = None, []
    for bench in sorted(out.glob("*/bench.json")):
        run = bench.parent
        cfg = TrainConfig.from_file(run / "args.json")
        row = {**json.loads(bench.read_text()), "checkpoint": str(run / "weights" / "last.safetensors")}
        if run.name.startswith("teacher-"):
            teacher = {**row, "model": cfg.model}
            continue
        student, rest = run.name.split("-", 1)
        method = rest.rsplit("-s", 1)[0]
        method, _, base = method.partition("-")
        rows.append({"task": "camvid", "student": student, "model": cfg.model, "pretrained": cfg.pretrained,
                     "method": method, "base": base or None, "seed": cfg.seed, **row})  # fmt: skip
    return teacher, rows


def summarise(teacher: dict, rows: list) -> list[dict]:
    """One entry per (student, method): seeds, per-seed mIoU, mean, std, train time, checkpoints."""
    out = []
    for student in STUDENTS:
        for method in METHODS:
            got = [r for r in rows if r["student"] == student and r["method"] == method]
            got.sort(key=lambda r: r["seed"])
            if not got:
                continue
            mious = [r["miou"] for r in got]
            out.append({"task": "camvid", "teacher": teacher["model"], "teacher_miou": teacher["miou"],
                        "student": got[0]["model"], "pretrained": got[0]["pretrained"], "method": method,
                        "base": got[0]["base"], "seeds": [r["seed"] for r in got], "miou": mious,
                        "mean": statistics.mean(mious), "std": statistics.stdev(mious) if len(mious) > 1 else 0.0,
                        "train_s": statistics.mean(r["train_s"] for r in got), "iters": got[0]["iters"],
                        "checkpoints": [r["checkpoint"] for r in got]})  # fmt: skip
    return out


def verdict(entry: dict, alone: dict | None, summary: list[dict]) -> str:
    """The issue's target beside the row: met or missed."""
    if entry["method"] == "alone" or alone is None:
        return ""
    if entry["method"] == "sakd":
        base = next(e for e in summary if e["student"] == entry["student"] and e["method"] == entry["base"])
        t, d = entry["train_s"] / base["train_s"], entry["mean"] - base["mean"]
        ok = t <= 0.6 and d >= -0.5
        return f"{'met' if ok else 'missed'}: {t:.2f}x {entry['base']}'s time, {d:+.1f} vs it"
    d = entry["mean"] - alone["mean"]
    if len(entry["seeds"]) < 3 or len(alone["seeds"]) < 3:
        return f"{d:+.1f} (seeds incomplete)"
    return f"{'met' if d >= GAIN else 'missed'} ({d:+.1f})"


def table(args, teacher: dict, summary: list[dict]) -> str:
    lines = [
        f"CamVid 11 classes, 367 train / 101 val frames, mIoU (%) on val, whole images at the training scale "
        f"(crop {args.imgsz[0]}x{args.imgsz[1]}, val resized to cover it). Every arm: {args.iters} iterations, "
        f"batch {args.batch}, AdamW lr {args.lr}, poly schedule with {args.iters // 10} warm-up steps, random "
        f"scale 0.5-2, flip, jitter {args.jitter}, the same data order per seed; methods at their defaults. "
        f"Teacher: {teacher['model']}, ImageNet encoder, {args.teacher_iters} iterations, seed 0: "
        f"**{teacher['miou']:.1f}**. SAKD: r = 0.5 for the other arms' epochs (half their steps), over the best "
        f"base. {machine()}; train times were taken while other work shared the 2 cores.",
        "",
        "`python benchmarks/camvid.py --camvid ../shared/data/camvid --reuse`",
        "",
        "| student | method | mIoU mean +- std | per seed | vs alone | target | train min |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    for e in summary:
        alone = next((a for a in summary if a["student"] == e["student"] and a["method"] == "alone"), None)
        init = "ImageNet" if e["pretrained"] else "random init"
        label = LABELS[e["method"]] + (f" over {LABELS[e['base']]}" if e["base"] else "")
        vs = f"{e['mean'] - alone['mean']:+.1f}" if alone and e is not alone else ""
        lines.append(f"| {e['student']} ({init}) | {label} | {e['mean']:.1f} +- {e['std']:.1f} | "
                     f"{', '.join(f'{m:.1f}' for m in e['miou'])} | {vs} | {verdict(e, alone, summary)} | "
                     f"{e['train_s'] / 60:.1f} |")  # fmt: skip
    gap = [f"{e['student']} {teacher['miou'] - e['mean']:+.1f}" for e in summary if e["method"] == "alone"]
    lines += ["", f"Teacher over each student alone (the issue asks >= +5): {', '.join(gap)}."]
    total = teacher["train_s"] + sum(e["train_s"] * len(e["seeds"]) for e in summary)
    lines += [f"Total training time of the arms above: {total / 3600:.1f} h.", "", "![mIoU by method](img/camvid.png)"]
    return "\n".join(lines)


def plot(teacher: dict, summary: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = list(dict.fromkeys(e["student"] for e in summary))
    fig, axes = plt.subplots(1, len(students), figsize=(4.2 * len(students), 3.6), squeeze=False)
    for ax, s in zip(axes[0], students, strict=True):
        got = [e for e in summary if e["student"] == s]
        xs = range(len(got))
        ax.bar(xs, [e["mean"] for e in got], yerr=[e["std"] for e in got], capsize=3, color="#8ab", zorder=1)
        for x, e in zip(xs, got, strict=True):
            ax.scatter([x] * len(e["miou"]), e["miou"], color="k", s=10, zorder=2)
        ax.axhline(teacher["miou"], color="red", linestyle="--", linewidth=1, label="teacher")
        ax.set_xticks(list(xs), [e["method"] for e in got], fontsize=8)
        lo = min(m for e in got for m in e["miou"])
        ax.set_ylim(max(0, lo - 8), max(teacher["miou"], *(m for e in got for m in e["miou"])) + 3)
        ax.set_title(f"{s} ({'ImageNet' if got[0]['pretrained'] else 'random init'})", fontsize=9)
        ax.set_ylabel("val mIoU (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    (DOCS / "img").mkdir(exist_ok=True)
    fig.savefig(DOCS / "img" / "camvid.png", dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camvid", required=True, help="CamVid root")
    p.add_argument("--teacher", default="unet-efficientnet-lite2")
    p.add_argument("--teacher-iters", type=int, default=1000)
    p.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--hdl-on", nargs="+", default=["fastlite"], help="students HDL is run on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sakd-seeds", type=int, default=1)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--imgsz", type=int, nargs=2, default=[160, 224])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--jitter", type=float, default=0.2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/bench-camvid"), help="where the arms' runs live")
    p.add_argument("--reuse", action="store_true", help="keep finished arms of the same experiment")
    p.add_argument("--table-only", action="store_true", help="write the docs from the finished arms on disk")
    args = p.parse_args()
    if not args.table_only:
        teacher = teacher_arm(args)
        for student in args.students:
            methods = [m for m in args.methods if m != "hdl" or student in args.hdl_on]
            student_arms(argparse.Namespace(**{**vars(args), "methods": methods}), student, teacher["checkpoint"])
    teacher, rows = collect(args.out)
    if teacher is None:
        sys.exit(f"no finished teacher under {args.out}: run without --table-only first")
    summary = summarise(teacher, rows)
    (DOCS / "results").mkdir(exist_ok=True)
    (DOCS / "results" / "camvid.json").write_text(json.dumps({"teacher": teacher, "arms": summary}, indent=1))
    plot(teacher, summary)
    print(write_block("benchmarks.md", "camvid", table(args, teacher, summary)))


if __name__ == "__main__":
    main()
