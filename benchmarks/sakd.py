"""SAKD figures, side by side in one run: training wall time per epoch and final mIoU of full pixel KD
against SAKD at r = 0.5 and r = 0.25 (same teacher, student, seed and number of epochs), on synth data and
on CamVid day sequences (val); and the greedy DPP's cost against N and k. Written to docs/benchmarks.md.

The teachers are source-trained checkpoints, e.g. those `benchmarks/duda.py` trains:

    python benchmarks/sakd.py --synth-teacher runs/bench-duda/synth-teacher-source/weights/last.safetensors \\
        --camvid ../shared/data/camvid --camvid-teacher runs/bench-duda/camvid-teacher-source/weights/last.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import finished, machine, teacher_task_args, write_block  # noqa: E402

from distilkit.data import build_dataset  # noqa: E402
from distilkit.engine.checkpoint import read_meta  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.trainer import run_training  # noqa: E402
from distilkit.methods.sakd import DEFAULTS as SAKD_DEFAULTS  # noqa: E402
from distilkit.methods.sakd import run_length  # noqa: E402
from distilkit.selection.adaptive import selection_size  # noqa: E402
from distilkit.selection.dpp import greedy_map, quality_diversity_kernel  # noqa: E402


def arms(epochs: int, n: int, args) -> list[tuple[str, str, str, dict, int]]:
    """(key, label, method, method args, iterations) of every arm: full KD, SAKD at each r and, with
    --controls, the two ablations of each r: full KD for SAKD's number of steps, and SAKD with a random subset
    in place of the DPP (alpha still adaptive)."""
    full = round(epochs * n / args.batch)
    rows = [("kd", "full KD", "kd", {}, full)]
    for r in args.ratios:
        sakd = {**SAKD_DEFAULTS, "ratio": r, "epochs": epochs, "select_every": args.select_every}  # as its run saves
        steps = run_length(epochs, selection_size(n, r), args.batch)
        rows.append((f"sakd{r}", f"SAKD r = {r}", "sakd", sakd, steps))
        if args.controls:
            rows.append((f"kd-steps{r}", f"full KD, r = {r}'s steps", "kd", {}, steps))
            rows.append((f"random{r}", f"SAKD r = {r}, random subset", "sakd", {**sakd, "selection": "random"}, steps))
    return rows


def run_task(task: str, data: str, root, teacher: str, epochs: int, imgsz, args, prior: dict) -> dict:
    """Every arm on one task. An arm in `prior` (--reuse: the saved results of an earlier run with the same
    --tag) whose run directory holds a finished run of exactly this experiment is not trained again; it keeps
    the mIoU and the time measured then."""
    n = len(build_dataset(data, "train", root))
    common = dict(data=data, data_root=root, model=args.student, pretrained=args.pretrained, imgsz=imgsz,
                  batch=args.batch, lr=args.lr, workers=args.workers, device="cpu", seed=args.seed)  # fmt: skip
    # the crop every arm trains on: the teacher's size unless given (as the distillation methods choose it)
    out = {"task": task, "n": n, "epochs": epochs, "imgsz": list(imgsz or read_meta(teacher)["imgsz"]), "arms": []}
    for key, label, method, extra, it in arms(epochs, n, args):
        # SAKD sets its own length from epochs and r (as here); every arm warms up for a tenth of its steps
        cfg = TrainConfig(command="bench-sakd", method=method, iters=it, val_every=10**9, warmup=it // 10,
                          method_args={"teacher": teacher, "temperature": 4.0, **extra}, **common)  # fmt: skip
        name = f"{task}-{key}{args.tag}"
        if (task, key) in prior and finished(Path("runs") / "bench-sakd" / name, cfg):
            out["arms"].append({**prior[task, key], "reused": True})
            continue
        start = time.perf_counter()
        results, _, m = run_training(cfg, name=name, exist_ok=True)
        out["arms"].append({"key": key, "label": label, "miou": results["miou"], "train_s": results["train_time_s"],
                            "iters": m.cfg.iters, "wall_s": time.perf_counter() - start})  # fmt: skip
    return out


def dpp_cost(sizes: list[tuple[int, int]], dim: int = 512) -> list[tuple[int, int, float]]:
    rows = []
    for n, k in sizes:
        g = torch.Generator().manual_seed(0)
        diag, row = quality_diversity_kernel(torch.randn(n, dim, generator=g), torch.rand(n, generator=g) + 0.5)
        start = time.perf_counter()
        greedy_map(diag, row, k)
        rows.append((n, k, time.perf_counter() - start))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    teacher_task_args(p)
    p.add_argument("--ratios", type=float, nargs="+", default=[0.5, 0.25])
    p.add_argument("--select-every", type=int, default=1)
    p.add_argument("--synth-epochs", type=int, default=3, help="0: CamVid only")
    p.add_argument("--camvid-epochs", type=int, default=6)
    p.add_argument("--synth-imgsz", type=int, nargs=2, help="synth crop H W (default: the teacher's size)")
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--pretrained", help="student encoder init (a weights file), in every arm")
    p.add_argument("--controls", action="store_true", help="add full KD at SAKD's steps and SAKD's random subset")
    p.add_argument("--tag", default="", help="suffix of the run directories and the docs block (--tag=-x)")
    p.add_argument("--reuse", action="store_true", help="keep the arms an earlier run with this --tag finished")
    args = p.parse_args()

    saved = Path("runs") / "bench-sakd" / f"results{args.tag}.json"
    prior = {}
    if args.reuse and saved.is_file():
        prior = {(r["task"], a["key"]): a for r in json.loads(saved.read_text()) for a in r["arms"]}

    synth_size = tuple(args.synth_imgsz) if args.synth_imgsz else None
    rows = (
        [run_task("synth", "synth-gta", None, args.synth_teacher, args.synth_epochs, synth_size, args, prior)]
        if args.synth_epochs
        else []
    )
    if args.camvid and args.camvid_teacher:
        rows.append(run_task("camvid", "camvid-day", args.camvid, args.camvid_teacher, args.camvid_epochs,
                             tuple(args.camvid_imgsz), args, prior))  # fmt: skip
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(rows, indent=2))

    cmd = " ".join(["python", "benchmarks/sakd.py", *sys.argv[1:]])
    names = {"synth": "synth-gta (val)", "camvid": "CamVid day (0016E5 val)"}
    lines = [
        f"Measured with `{cmd}` on {machine()}. Student {args.student} ("
        + (f"encoder from `{args.pretrained}`" if args.pretrained else "random init")
        + f"), pixel KD (T = 4) as the base loss, batch "
        f"{args.batch}, the same seed and number of epochs for every row; SAKD's time includes its difficulty "
        f"passes (at half resolution, every {args.select_every} epoch(s)) and the DPP selection (every epoch); "
        "evaluation is excluded"
        + (
            ", and an arm marked (reused) keeps the time and mIoU of the earlier run with this tag that trained it"
            if any(a.get("reused") for r in rows for a in r["arms"])
            else ""
        )
        + ". mIoU (%) on the val split:",
        "",
        "| data | method | epochs | iterations | train s / epoch | time vs full KD | mIoU | mIoU - full KD |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        kd = r["arms"][0]
        for v in r["arms"]:
            data = f"{names[r['task']]} ({r['n']} images, {'x'.join(map(str, r['imgsz']))})"
            label = v["label"] + (" (reused)" if v.get("reused") else "")
            lines.append(f"| {data} | {label} | {r['epochs']} | {v['iters']} | "
                         f"{v['train_s'] / r['epochs']:.0f} | {v['train_s'] / kd['train_s']:.2f}x | "
                         f"{100 * v['miou']:.1f} | {100 * (v['miou'] - kd['miou']):+.1f} |")  # fmt: skip
    if not args.tag:  # a tagged run is a variant of the main block and does not repeat its DPP timings
        cost = dpp_cost([(1000, 100), (2000, 100), (4000, 100), (2000, 200), (2000, 400)])
        lines += ["", "Greedy DPP MAP (incremental Cholesky), 512-d features, wall time:", "",
                  "| N | k | ms |", "|---|---|---|"]  # fmt: skip
        lines += [f"| {n} | {k} | {1000 * s:.0f} |" for n, k, s in cost]
    print("\n".join(lines))
    print(f"written to {write_block('benchmarks.md', f'sakd{args.tag}', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
