"""The offline ImageNet encoders (EfficientNet-Lite0/1/2) measured beside the existing models, in one run.

1. cost: for every new model and segformer-b0/b1 and fastlitessnet, at CamVid's 360x480 and at 512x1024:
   parameters, GFLOPs, eager PyTorch and onnxruntime latency (batch 1, this CPU).
2. accuracy: `train-teacher` on CamVid (standard 367 train / 101 val frames) with `--pretrained imagenet` and
   from random init, same model, iterations, seed and data order; mIoU on val (whole images at the training scale).

    python benchmarks/encoders.py --parts cost
    python benchmarks/encoders.py --parts accuracy --camvid ../shared/data/camvid --iters 600 --reuse
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import finished, machine, write_block  # noqa: E402

from distilkit.data.camvid import CAMVID_INFO  # noqa: E402
from distilkit.engine.checkpoint import model_meta, read_meta  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.speed import benchmark  # noqa: E402
from distilkit.engine.trainer import run_training  # noqa: E402
from distilkit.models import create_model  # noqa: E402

NEW = [f"{d}-efficientnet-lite{i}" for d in ("fpn", "deeplabv3plus", "unet") for i in range(3)]
BESIDE = ["segformer-b0", "segformer-b1", "fastlitessnet"]
OUT = Path("runs/bench-encoders")


def cost(args) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in ((360, 480), (512, 1024)):
            for name in NEW + BESIDE:
                torch.manual_seed(0)
                model = create_model(name, CAMVID_INFO.num_classes).eval()
                meta = model_meta(model, CAMVID_INFO, size, "bench")
                for row in benchmark([(name, model, meta)], ["torch", "onnx"], torch.device("cpu"), size, 1, False,
                                     args.warmup, args.runs, tmp):  # fmt: skip
                    rows.append({"size": f"{size[0]}x{size[1]}", **row})
                    print(f"{rows[-1]['size']:>9} {name:32} {row['backend']:5} {row['median_ms']:8.1f} ms", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "cost.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"Measured on {machine()}, batch 1, {args.runs} timed runs after {args.warmup} warm-up, median latency "
        "(inputs padded to a multiple of 32: 360x480 runs as 384x480). GFLOPs: torch's FLOP counter, a "
        "multiply-add counts 2. `python benchmarks/encoders.py --parts cost`.",
        "",
        "| input | model | params (M) | GFLOPs | PyTorch ms | onnxruntime ms | onnxruntime frames/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for size in ("360x480", "512x1024"):
        for name in NEW + BESIDE:
            t, o = (next(r for r in rows if r["size"] == size and r["model"] == name and r["backend"] == b)
                    for b in ("torch", "onnx"))  # fmt: skip
            lines.append(f"| {size} | {name} | {t['params'] / 1e6:.2f} | {t['gflops']:.1f} | {t['median_ms']:.0f} | "
                         f"{o['median_ms']:.0f} | {o['fps']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def accuracy(args) -> str:
    rows = []
    for model in args.models:
        for init in ("imagenet", None):
            cfg = TrainConfig(command="bench-encoders", data="camvid", data_root=args.camvid, model=model,
                              pretrained=init, imgsz=tuple(args.imgsz), batch=args.batch, iters=args.iters,
                              lr=args.lr, warmup=args.iters // 10, val_every=args.iters, seed=args.seed,
                              workers=args.workers, device="cpu", method_args={"aug": {"jitter": 0.2}})  # fmt: skip
            run_dir = OUT / f"{model}-{init or 'random'}-{args.iters}"
            if not (args.reuse and finished(run_dir, cfg) and (run_dir / "bench.json").is_file()):
                results, _, _ = run_training(cfg, out=run_dir, exist_ok=True)
                row = {"model": model, "init": init or "random", "miou": 100 * results["miou"],
                       "train_s": results["train_time_s"],
                       "encoder_init": read_meta(run_dir / "weights" / "last.safetensors")["encoder_init"]}  # fmt: skip
                (run_dir / "bench.json").write_text(json.dumps(row, indent=1))
            rows.append(json.loads((run_dir / "bench.json").read_text()))
            print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "accuracy.json").write_text(json.dumps(rows, indent=1))
    lines = [
        f"CamVid 11 classes, `--data camvid`: 367 train frames, mIoU on the 101 val frames (whole images at the "
        f"training scale {args.imgsz[0]}x{args.imgsz[1]}), {args.iters} iterations, batch {args.batch}, AdamW lr "
        f"{args.lr}, poly schedule, seed {args.seed}, same data order in both arms; {machine()}.",
        f"`python benchmarks/encoders.py --parts accuracy --camvid ../shared/data/camvid --iters {args.iters} "
        f"--imgsz {args.imgsz[0]} {args.imgsz[1]} --models {' '.join(args.models)}`",
        "",
        "| model | ImageNet init | random init | gain | train time per arm (min) |",
        "|---|---:|---:|---:|---:|",
    ]
    for model in args.models:
        pre, rnd = (next(r for r in rows if r["model"] == model and r["init"] == i) for i in ("imagenet", "random"))
        lines.append(f"| {model} | {pre['miou']:.1f} | {rnd['miou']:.1f} | {pre['miou'] - rnd['miou']:+.1f} | "
                     f"{(pre['train_s'] + rnd['train_s']) / 120:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", default=["cost"], choices=["cost", "accuracy"])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--runs", type=int, default=5, help="cost: timed runs per model and backend")
    p.add_argument("--iters", type=int, default=600, help="accuracy: training iterations per arm")
    p.add_argument("--camvid", help="CamVid root")
    p.add_argument("--models", nargs="+", default=["fpn-efficientnet-lite0", "deeplabv3plus-efficientnet-lite2"])
    p.add_argument("--imgsz", type=int, nargs=2, default=[192, 256])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reuse", action="store_true", help="keep finished arms of the same experiment")
    args = p.parse_args()
    if "cost" in args.parts:
        print(write_block("benchmarks.md", "encoders-cost", cost(args)))
    if "accuracy" in args.parts:
        if not args.camvid:
            p.error("--parts accuracy needs --camvid ROOT")
        print(write_block("benchmarks.md", "encoders-accuracy", accuracy(args)))


if __name__ == "__main__":
    main()
