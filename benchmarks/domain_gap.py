"""Measure the domain gap of the built-in synthetic pair (and optionally CamVid day -> dusk).

Trains a model on the source with `train-teacher`'s engine, evaluates it on the source val split and on the
target, and writes the table to docs/datasets.md. The issue's bar: the synth-gta model must lose at least
15 mIoU points on synth-city.

    python benchmarks/domain_gap.py --iters 600            # synth-gta -> synth-city
    python benchmarks/domain_gap.py --camvid ../shared/data/camvid --iters 600
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import machine, write_block  # noqa: E402

from distilkit.data import build_dataset  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.trainer import run_training  # noqa: E402
from distilkit.engine.validator import evaluate  # noqa: E402


def measure(src: str, src_val: tuple[str, str], tgt: tuple[str, str], args, root: str | None) -> dict:
    cfg = TrainConfig(
        command="bench-gap", data=src, data_root=root, model=args.model, iters=args.iters, batch=args.batch,
        val_every=args.iters, warmup=min(100, args.iters // 5), workers=args.workers, device="cpu",
        seed=args.seed, imgsz=tuple(args.imgsz) if args.imgsz else None,
    )  # fmt: skip
    start = time.perf_counter()
    _, run_dir, method = run_training(cfg, name=src)
    train_s = time.perf_counter() - start
    model, info = method.student().eval(), method.info()
    out = {"source": src, "run": str(run_dir), "train_s": train_s}
    for key, (name, split) in (("src_miou", src_val), ("tgt_miou", tgt)):
        res = evaluate(model, build_dataset(name, split, root), info, method.imgsz, torch.device("cpu"), 8, 0)
        out[key] = res["miou"]
    out["gap"] = out["src_miou"] - out["tgt_miou"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="segformer-b0")
    p.add_argument("--iters", type=int, default=600)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imgsz", type=int, nargs=2)
    p.add_argument("--camvid", help="CamVid root: also measure day (0006R0+0016E5) -> dusk (0001TP)")
    args = p.parse_args()

    rows = [measure("synth-gta", ("synth-gta", "val"), ("synth-city", "val"), args, None)]
    if args.camvid:
        rows.append(measure("camvid-day", ("camvid-day", "val"), ("camvid-dusk", "train"), args, args.camvid))
    cmd = " ".join(["python", "benchmarks/domain_gap.py", *sys.argv[1:]])
    lines = [
        f"Measured with `{cmd}` ({args.model}, {args.iters} iterations, batch {args.batch}, seed {args.seed}; "
        f"{machine()}).",
        "",
        "| source -> target | source val mIoU | target mIoU | gap (points) | training time |",
        "|---|---|---|---|---|",
    ]
    targets = {"synth-gta": "synth-city (val)", "camvid-day": "camvid-dusk (train frames, labels only to measure)"}
    for r in rows:
        lines.append(
            f"| {r['source']} -> {targets[r['source']]} | {100 * r['src_miou']:.1f} | {100 * r['tgt_miou']:.1f} "
            f"| {100 * r['gap']:.1f} | {r['train_s'] / 60:.1f} min |"
        )
    print("\n".join(lines))
    print(f"written to {write_block('datasets.md', 'domain-gap', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
