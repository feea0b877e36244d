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
    python benchmarks/camvid.py --camvid ../shared/data/camvid --reuse --students fastlite --methods alone \
        --variants "kd[temperature=1]"                                       # a method off its defaults

`--methods`/`--students`/`--variants` choose what to train; the table shows every finished arm on disk, so a
partial call never drops rows. A variant's runs live in `<student>-<method>+<key>=<value>-s<seed>`.

Results outlive their run directories: an arm whose directory is not on this machine (a new clone, another
machine) is taken from docs/results/camvid.json when its recorded experiment (every setting but the seed and
the data root) is exactly the one asked for, and marked as recorded in the table; anything else is retrained.
Each seed goes into the results file as soon as it is trained, so a call stopped halfway (a session that ends)
keeps what it finished; the seeds it had not redone yet stay as recorded.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import DOCS, machine, write_block  # noqa: E402

from distilkit.engine.compare import (  # noqa: E402
    ALONE,
    Arm,
    finished,
    named_defaults,
    plot,
    run_arm,
    sakd_args,
    summarise,
)
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.utils.files import atomic_write  # noqa: E402

STUDENTS = {  # key: (model, --pretrained)
    "lite0": ("deeplabv3plus-efficientnet-lite0", "imagenet"),
    "fastlite": ("fastlitessnet", None),
    "b0": ("segformer-b0", None),
}
METHODS = [ALONE, "kd", "sdd", "cwd", "hdl", "sakd"]
LABELS = {ALONE: "student alone", "kd": "pixel KD", "sdd": "SDD", "cwd": "CWD", "hdl": "HDL",
          "sakd": "SAKD r = 0.5"}  # fmt: skip
GAIN = 1.0  # the target: a method's mean >= the student alone + 1.0 mIoU
TRAIN_FRAMES = 367
SHOWN_SEEDS = 10  # seeds 0..9 finished on disk or recorded are always in the table, whatever --seeds trains


def base_config(args, **kw) -> TrainConfig:
    """What every arm shares: data, crop, batch, optimiser, schedule, augmentation, evaluation."""
    iters = kw.pop("iters", args.iters)
    common = dict(command="bench-camvid", data="camvid", data_root=args.camvid, imgsz=tuple(args.imgsz),
                  batch=args.batch, iters=iters, lr=args.lr, warmup=iters // 10, val_every=10**9,
                  workers=args.workers, device="cpu")  # fmt: skip
    return TrainConfig(**{**common, **kw})


def teacher_dir(args) -> Path:
    size = "" if teacher_imgsz(args) == tuple(args.imgsz) else "-{}x{}".format(*teacher_imgsz(args))
    return args.teacher_run or args.out / f"teacher-{args.teacher}-{args.teacher_iters}{size}"


def teacher_imgsz(args) -> tuple[int, int]:
    return tuple(args.teacher_imgsz or args.imgsz)


def at_students_scale(args, row: dict) -> dict:
    """A teacher trained at another crop, scored like the students (val at their scale), so the margin over
    them compares like with like; its own-scale mIoU is kept as `miou_own_scale`. Cached beside the run."""
    cache = Path(row["checkpoint"]).parent.parent / "at-{}x{}.json".format(*args.imgsz)
    if not cache.is_file():
        import torch

        from distilkit.data import build_dataset
        from distilkit.engine.checkpoint import load_model
        from distilkit.engine.validator import evaluate

        val = build_dataset("camvid", "val", args.camvid)
        res = evaluate(load_model(row["checkpoint"])[0], val, val.info, tuple(args.imgsz), torch.device("cpu"),
                       show_progress=False)  # fmt: skip
        cache.write_text(json.dumps({"miou": 100 * res["miou"]}))
    return {**row, "miou_own_scale": row["miou"], "miou": json.loads(cache.read_text())["miou"]}


def experiment(cfg: TrainConfig) -> dict:
    """What makes two runs the same experiment whatever machine and seed: every setting but those."""
    out = json.loads(cfg.to_json())
    for key in ("data_root", "seed", "workers", "device"):
        out.pop(key)
    return out


def recorded_results(args) -> dict:
    """The results file of an earlier call: its teacher and, by (student model, arm), each arm's entry."""
    path = DOCS / "results" / f"camvid{args.tag}.json"
    if not path.is_file():
        return {"teacher": None, "arms": {}}
    data = json.loads(path.read_text())
    return {"teacher": data.get("teacher"), "arms": {(e["student"], e["arm"]): e for e in data.get("arms", [])}}


def teacher_note(summaries: dict, teacher: dict) -> str:
    """Which rows learnt from another run of the teacher's recipe than the one in the caption (empty: none)."""
    other = sorted({round(m, 1) for summ in summaries.values() for e in summ for m in e["teacher_mious"]
                    if m is not None and round(m, 1) != round(teacher["miou"], 1)})  # fmt: skip
    if not other:
        return ""
    return (
        f"(teacher X): the row's seeds learnt from an earlier run of the same teacher recipe that reached X "
        f"({', '.join(f'{m:.1f}' for m in other)}; the caption's teacher, {teacher['miou']:.1f}, is this "
        "machine's run: the same settings on another CPU give slightly different floating point)."
    )


def recorded_row(entry: dict | None, arm: Arm, teacher_miou: float | None) -> dict | None:
    """The row of `arm` from a recorded entry of exactly its experiment and seed (None when there is none), with
    the mIoU of the teacher it learnt from (a teacher of the same recipe retrained elsewhere can differ a little:
    floating point on another CPU), so the table can say so."""
    if not entry or arm.seed not in entry["seeds"] or entry.get("config") != experiment(arm.cfg):
        return None
    i = entry["seeds"].index(arm.seed)
    train_s = entry.get("train_s_seeds", [entry["train_s"]] * len(entry["seeds"]))[i]
    learnt = entry.get("teacher_mious", [teacher_miou] * len(entry["seeds"]))[i] if arm.name != ALONE else None
    return {"arm": arm.name, "seed": arm.seed, "miou": entry["miou"][i], "train_s": train_s, "iters": entry["iters"],
            "checkpoint": entry["checkpoints"][i], "recorded": True, "teacher_miou": learnt,
            "paired_init": arm.seed in entry.get("paired_init_seeds", [])}  # fmt: skip


def teacher_arm(args, recorded: dict) -> dict:
    """The teacher, trained once; with --table-only and no run directory here, the recorded one."""
    cfg = base_config(args, model=args.teacher, pretrained="imagenet", iters=args.teacher_iters, seed=0,
                      imgsz=teacher_imgsz(args), method_args={"aug": {"jitter": args.jitter}})  # fmt: skip
    arm = Arm("teacher", 0, cfg, teacher_dir(args))
    kept = recorded["teacher"]
    if args.table_only and not finished(arm.run_dir, cfg):
        if not kept or kept.get("config") != experiment(cfg):
            sys.exit(f"no finished teacher at {teacher_dir(args)} or in the results file: run without --table-only")
        return kept
    row = {**run_arm(arm, args.reuse), "model": args.teacher, "config": experiment(cfg)}
    return row if teacher_imgsz(args) == tuple(args.imgsz) else at_students_scale(args, row)


VARIANT = re.compile(r"^(\w+)\[(\w+=[^\],]+(?:,\w+=[^\],]+)*)\]$")  # kd[temperature=1,kd_weight=0.5]
VARIANT_DIR = re.compile(r"^(?P<student>\w+)-(?P<method>\w+)\+(?P<set>[^-]+)-s\d+$")


def parse_variant(text: str) -> tuple[str, dict]:
    """'kd[temperature=1]' -> ('kd', {'temperature': 1.0}): a method with some of its options off the defaults."""
    m = VARIANT.match(text.replace(" ", ""))
    if not m or m.group(1) not in METHODS[1:-1]:
        sys.exit(f"--variants {text}: expected METHOD[KEY=VALUE,...] with METHOD one of {', '.join(METHODS[1:-1])}")
    sets = dict(kv.split("=", 1) for kv in m.group(2).split(","))
    return m.group(1), {k: float(v) for k, v in sets.items()}


def variant_tag(method: str, sets: dict) -> str:
    return method + "[" + ",".join(f"{k}={v:g}" for k, v in sets.items()) + "]"


def on_disk_variants(out: Path, student: str) -> list[str]:
    """The variants some earlier call trained for this student (so the table keeps their rows)."""
    found = []
    for d in sorted(out.glob(f"{student}-*+*-s*")):
        m = VARIANT_DIR.match(d.name)
        if m and m["student"] == student and (d / "arm.json").is_file():
            found.append(variant_tag(*parse_variant(f"{m['method']}[{m['set']}]")))
    return list(dict.fromkeys(found))


def arm_of(args, student: str, method: str, seed: int, teacher: str, base: str = "") -> Arm:
    """One arm of one student: the engine method and its arguments, in its run directory. `method` and `base`
    may be variants (`kd[temperature=1]`): their options go into the method's arguments."""
    model, pretrained = STUDENTS[student]
    extra: dict = {"aug": {"jitter": args.jitter}}
    method, sets = parse_variant(method) if "[" in method else (method, {})
    name = "supervised" if method == ALONE else method
    if method != ALONE:
        extra["teacher"] = teacher
    if method == "sakd":
        base_method, sets = parse_variant(base) if "[" in base else (base, {})
        extra |= sakd_args(base_method, args.iters, args.batch, TRAIN_FRAMES)
    extra = named_defaults(method, extra | sets)
    cfg = base_config(args, method=name, model=model, pretrained=pretrained, seed=seed, method_args=extra)
    tag = f"{method}-{base}" if base else (variant_tag(method, sets) if sets else method)
    folder = tag.replace("[", "+").replace("]", "")  # kd[temperature=1] -> kd+temperature=1
    return Arm(tag, seed, cfg, args.out / f"{student}-{folder}-s{seed}")


def student_rows(
    args, student: str, teacher: dict, train: bool, recorded: dict, trained_one: Callable[[list[dict]], None]
) -> list[dict]:
    """Every arm of one student: trained when chosen by --students/--methods/--variants (unless finished or
    recorded), and every other arm finished on disk or recorded, so the table always shows all of them.
    `trained_one(rows so far)` after each arm this call trained."""
    model = STUDENTS[student][0]
    teacher_miou = teacher["miou"]
    recorded_teacher = (recorded["teacher"] or {}).get("miou", teacher_miou)
    recorded = recorded["arms"]
    teacher = teacher["checkpoint"]
    kept = [variant_tag(*parse_variant(a)) for (m, a) in recorded if m == model and "[" in a and "-" not in a]
    variants = list(dict.fromkeys(args.variants + on_disk_variants(args.out, student) + kept))
    arms = METHODS[:-1] + variants + ["sakd"]
    rows: list[dict] = []
    for method in arms:
        chosen = train and student in args.students and (method in args.methods or method in args.variants)
        base = ""
        if method == "sakd":
            base = best_base(rows)
            if not base:
                continue
        trained = args.seeds[: args.sakd_seeds] if method == "sakd" else args.seeds
        for seed in sorted(set(trained) | set(range(SHOWN_SEEDS))):  # --seeds chooses what to train, not to show
            arm = arm_of(args, student, method, seed, teacher, base)
            labels = {"method": method.split("[")[0], "base": base or None, "config": experiment(arm.cfg)}
            on_disk = finished(arm.run_dir, arm.cfg)
            old = None if on_disk else recorded_row(recorded.get((model, arm.name)), arm, recorded_teacher)
            if old and not (chosen and seed in trained and args.rerun_recorded):
                rows.append({**old, **labels})
            elif (chosen and seed in trained) or on_disk:
                learnt = None if method == ALONE else teacher_miou
                rows.append({**run_arm(arm, args.reuse), **labels, "teacher_miou": learnt})
                if not (args.reuse and on_disk):  # run_arm trained it
                    trained_one(rows)
    return rows


def summary_of(rows: list[dict]) -> list[dict]:
    """One results-file entry per arm of one student (what `entry_rows` reads back)."""
    summary = []
    for e in summarise(rows):
        got = sorted((r for r in rows if r["arm"] == e["arm"]), key=lambda r: r["seed"])
        summary.append({**e, "method": got[0]["method"], "base": got[0]["base"], "config": got[0]["config"],
                        "train_s_seeds": [r["train_s"] for r in got],
                        "teacher_mious": [r["teacher_miou"] for r in got],
                        "recorded_seeds": [r["seed"] for r in got if r.get("recorded")],
                        "paired_init_seeds": [r["seed"] for r in got if r.get("paired_init")]})  # fmt: skip
    return summary


def entry_rows(entry: dict) -> list[dict]:
    """The per-seed rows a results-file entry was made from."""
    n = len(entry["seeds"])
    train_s = entry.get("train_s_seeds", [entry["train_s"]] * n)
    learnt = entry.get("teacher_mious", [None] * n)
    return [{"arm": entry["arm"], "seed": seed, "miou": entry["miou"][i], "train_s": train_s[i],
             "iters": entry["iters"], "checkpoint": entry["checkpoints"][i], "teacher_miou": learnt[i],
             "recorded": seed in entry.get("recorded_seeds", []),
             "paired_init": seed in entry.get("paired_init_seeds", []), "method": entry["method"],
             "base": entry["base"], "config": entry["config"]} for i, seed in enumerate(entry["seeds"])]  # fmt: skip


def entries(teacher: dict, rows: dict[str, list[dict]]) -> list[dict]:
    """The results file's arms: every student's summary, labelled."""
    out = []
    for student, got in rows.items():
        model, pretrained = STUDENTS[student]
        out += [{"task": "camvid", "teacher": teacher["model"], "student": model, "pretrained": pretrained, **e}
                for e in summary_of(got)]  # fmt: skip
    return out


def with_earlier_seeds(done: dict[str, list[dict]], before: list[dict]) -> dict[str, list[dict]]:
    """The rows of a call still under way, plus every seed the results file held before that it has not redone
    yet (of the same experiment: an arm trained now under other settings drops the old ones)."""
    out = {}
    for student, (model, _) in STUDENTS.items():
        new = done.get(student, [])
        redone = {(r["arm"], r["seed"]) for r in new}
        configs = {r["arm"]: r["config"] for r in new}
        old = [
            r
            for e in before
            if e["student"] == model
            for r in entry_rows(e)
            if (r["arm"], r["seed"]) not in redone and configs.get(r["arm"], r["config"]) == r["config"]
        ]
        if new or old:
            out[student] = new + old
    return out


def save_results(args, teacher: dict, arms: list[dict]) -> Path:
    path = DOCS / "results" / f"camvid{args.tag}.json"
    atomic_write(path, lambda p: p.write_text(json.dumps({"teacher": teacher, "arms": arms}, indent=1)))
    return path


def unpaired(e: dict) -> bool:
    """Whether some seeds of a method's row started from another student init than the student alone's."""
    return e["arm"] != ALONE and set(e["seeds"]) != set(e["paired_init_seeds"])


def best_base(rows: list[dict]) -> str:
    """The base (a method or variant) with the best mean mIoU over its seeds (ties: the cheaper by train time)."""
    means = {}
    for arm in dict.fromkeys(r["arm"] for r in rows if r["method"] in ("kd", "sdd", "cwd", "hdl")):
        got = [r for r in rows if r["arm"] == arm]
        means[arm] = (statistics.mean(r["miou"] for r in got), -statistics.mean(r["train_s"] for r in got))
    return max(means, key=means.get) if means else ""


def verdict(e: dict, summary: list[dict]) -> str:
    """The issue's target beside the row: met or missed."""
    if e["arm"] == ALONE or e["diff_mean"] is None:
        return ""
    if e["method"] == "sakd":
        base = next(b for b in summary if b["arm"] == e["base"])
        t, d = e["train_s"] / base["train_s"], e["mean"] - base["mean"]
        return f"{'met' if t <= 0.6 and d >= -0.5 else 'missed'}: {t:.2f}x {e['base']}'s time, {d:+.1f} vs it"
    if len(e["seeds"]) < 3:
        return f"{e['diff_mean']:+.1f} (seeds incomplete)"
    return f"{'met' if e['diff_mean'] >= GAIN else 'missed'} ({e['diff_mean']:+.1f})"


def command(args) -> str:
    """The command that reproduces the table: every arm of the block comes from the same settings."""
    argv = [a for a in sys.argv[1:] if a != "--table-only"]
    keep, skip = [], False
    for a in argv:  # which arms to train is not part of the experiment: the table shows every finished one
        if a in ("--students", "--methods", "--variants"):
            skip = True
        elif a.startswith("--"):
            skip = False
        if not skip:
            keep.append(a if " " not in a and "[" not in a else f"'{a}'")
    return " ".join(["python benchmarks/camvid.py", *keep] + (["--reuse"] if "--reuse" not in keep else []))


def table(args, teacher: dict, summaries: dict[str, list[dict]]) -> str:
    own_scale = (
        ""
        if "miou_own_scale" not in teacher
        else " at crop {}x{} ({:.1f} at that scale; below: val at the students' scale)".format(
            *teacher_imgsz(args), teacher["miou_own_scale"]
        )
    )
    lines = [
        f"CamVid 11 classes, 367 train / 101 val frames, mIoU (%) on val, whole images at the training scale "
        f"(crop {args.imgsz[0]}x{args.imgsz[1]}, val resized to cover it). Every arm: {args.iters} iterations, "
        f"batch {args.batch}, AdamW lr {args.lr}, poly schedule with {args.iters // 10} warm-up steps, random "
        f"scale 0.5-2, flip, jitter {args.jitter}, the same data order per seed; methods at their defaults. "
        f"Teacher: {teacher['model']}, ImageNet encoder, {args.teacher_iters} iterations{own_scale}, seed 0: "
        f"**{teacher['miou']:.1f}**. SAKD: r = 0.5 for the other arms' epochs (half their steps), over the best "
        f"base. Differences to the student alone are paired by seed (the same data order). {machine()}; train "
        "times were taken while other work shared the 2 cores.",
        "",
        f"`{command(args)}` (arms through `distilkit compare`'s harness, `distilkit/engine/compare.py`)",
        "",
        "| student | method | mIoU mean +- std | per seed | vs alone | target | train min |",
        "|---|---|---:|---|---:|---|---:|",
    ]
    for student, summary in summaries.items():
        model, pretrained = STUDENTS[student]
        init = "ImageNet" if pretrained else "random init"
        for e in summary:
            extra = e["arm"][len(e["method"]) :] if e["arm"].startswith(e["method"] + "[") else ""
            base = e["base"] or ""
            base_label = LABELS.get(base.split("[")[0], base) + base[len(base.split("[")[0]) :]
            label = LABELS[e["method"]] + extra + (f" over {base_label}" if base else "")
            vs = "" if e["diff_mean"] is None else f"{e['diff_mean']:+.1f} +- {e['diff_std']:.1f}"
            label += " (recorded)" if e["recorded_seeds"] else ""
            label += " (init unpaired)" if unpaired(e) else ""
            learnt = {round(m, 1) for m in e["teacher_mious"] if m is not None}
            if learnt and learnt != {round(teacher["miou"], 1)}:
                label += f" (teacher {', '.join(f'{m:.1f}' for m in sorted(learnt))})"
            lines.append(f"| {model} ({init}) | {label} | {e['mean']:.1f} +- {e['std']:.1f} | "
                         f"{', '.join(f'{m:.1f}' for m in e['miou'])} | {vs} | {verdict(e, summary)} | "
                         f"{e['train_s'] / 60:.1f} |")  # fmt: skip
    gap = [f"{STUDENTS[s][0]} {teacher['miou'] - e['mean']:+.1f}" for s, summ in summaries.items() for e in summ
           if e["arm"] == ALONE]  # fmt: skip
    lines += ["", f"Teacher over each student alone (the issue asks >= +5): {', '.join(gap)}."]
    if any(e["recorded_seeds"] for summ in summaries.values() for e in summ):
        lines += [
            f"(recorded): some seeds of the row come from docs/results/camvid{args.tag}.json (the same experiment, "
            "run on an earlier machine whose run directories this one does not have)."
        ]
    if any(unpaired(e) for summ in summaries.values() for e in summ):
        lines += [
            "(init unpaired): some seeds of the row were trained before 2026-12-06, when loading the teacher still "
            "drew from the RNG, so their student started from other initial weights than the student alone at "
            "the same seed (paired in data order only); since then every arm starts from the student alone's "
            "init (a method at weight 0 trains bitwise the student alone: tests/test_compare.py)."
        ]
    if note := teacher_note(summaries, teacher):
        lines += [note]
    total = teacher["train_s"] + sum(e["train_s"] * len(e["seeds"]) for summ in summaries.values() for e in summ)
    lines += [f"Total training time of the arms above: {total / 3600:.1f} h.", ""]
    lines += [f"![{s}](img/camvid{args.tag}-{s}.png)" for s in summaries]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--camvid", required=True, help="CamVid root")
    p.add_argument("--teacher", default="unet-efficientnet-lite2")
    p.add_argument("--teacher-iters", type=int, default=1000)
    p.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    p.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    p.add_argument("--variants", nargs="*", default=[], help="methods off their defaults, e.g. 'kd[temperature=1]'")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sakd-seeds", type=int, default=1)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--imgsz", type=int, nargs=2, default=[160, 224])
    p.add_argument("--teacher-imgsz", type=int, nargs=2, help="the teacher's training crop (default: --imgsz)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--jitter", type=float, default=0.2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("runs/bench-camvid"), help="where the arms' runs live")
    p.add_argument("--teacher-run", type=Path, help="the teacher's run directory (default: under --out)")
    p.add_argument("--tag", default="", help="another setting: its own docs block, results file and plots")
    p.add_argument("--reuse", action="store_true", help="keep finished arms of the same experiment")
    p.add_argument(
        "--rerun-recorded",
        action="store_true",
        help="train the chosen arms that only the results file records (to have their checkpoints here)",
    )
    p.add_argument("--table-only", action="store_true", help="write the docs from the finished arms on disk")
    args = p.parse_args()
    args.reuse = args.reuse or args.table_only
    recorded = recorded_results(args)
    before = list(recorded["arms"].values())
    teacher = teacher_arm(args, recorded)
    for v in args.variants:
        parse_variant(v)
    done: dict[str, list[dict]] = {}
    for student in STUDENTS:

        def trained_one(rows: list[dict], student: str = student) -> None:
            """Each seed is in the results file as soon as it is trained: a call stopped halfway keeps it."""
            save_results(args, teacher, entries(teacher, with_earlier_seeds({**done, student: rows}, before)))

        rows = student_rows(args, student, teacher, not args.table_only, recorded, trained_one)
        if rows:
            done[student] = rows
    summaries = {student: summary_of(rows) for student, rows in done.items()}
    for student, summary in summaries.items():
        model, pretrained = STUDENTS[student]
        init = "ImageNet" if pretrained else "random"
        plot(summary, DOCS / "img" / f"camvid{args.tag}-{student}.png", f"{model} ({init})", teacher["miou"], "teacher")
    save_results(args, teacher, entries(teacher, done))
    print(write_block("benchmarks.md", f"camvid{args.tag}", table(args, teacher, summaries)))


if __name__ == "__main__":
    main()
