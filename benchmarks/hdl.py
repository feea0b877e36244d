"""HDL figures: FastLiteSSNet's parameters, GFLOPs and CPU latency against the UNet teachers, and the mIoU of
the student trained alone vs with HDL (same optimiser, schedule and seed) on synth data and on CamVid day
sequences (val). Written to docs/benchmarks.md.

For each task, in one run: train a UNet teacher (train-teacher's engine), then the FastLiteSSNet student
alone (CE) and with the hybrid distillation loss from that teacher.

    python benchmarks/hdl.py --camvid ../shared/data/camvid
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import machine, write_block  # noqa: E402

from distilkit.data.synth import SYNTH_INFO  # noqa: E402
from distilkit.engine.checkpoint import model_meta  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.speed import benchmark  # noqa: E402
from distilkit.engine.trainer import run_training  # noqa: E402
from distilkit.models import create_model  # noqa: E402


def speed_rows(teachers: list[str], imgsz: tuple[int, int], iters: int) -> list[dict]:
    models = []
    for arch in [*teachers, "fastlitessnet"]:
        net = create_model(arch, SYNTH_INFO.num_classes).eval()
        models.append((arch, net, model_meta(net, SYNTH_INFO, imgsz, "none")))
    with tempfile.TemporaryDirectory() as tmp:
        return benchmark(models, ["torch", "onnx"], torch.device("cpu"), imgsz, 1, False, 3, iters, tmp)


def run_task(task: str, data: str, root, imgsz, args) -> dict:
    common = dict(data=data, data_root=root, imgsz=imgsz, batch=args.batch, workers=args.workers, device="cpu",
                  seed=args.seed)  # fmt: skip
    out = {"task": task}
    start = time.perf_counter()
    teacher_cfg = TrainConfig(command="bench-hdl", model=args.teacher, iters=args.teacher_iters,
                              val_every=args.teacher_iters, warmup=args.teacher_iters // 10, **common)  # fmt: skip
    results, run_dir, _ = run_training(teacher_cfg, name=f"{task}-teacher", exist_ok=True)
    out["teacher"], out["teacher_s"] = results["miou"], time.perf_counter() - start
    teacher = str(run_dir / "weights" / "last.safetensors")
    student = dict(model="fastlitessnet", iters=args.iters, val_every=args.iters, warmup=args.iters // 10,
                   optimizer="adam", lr=args.lr, weight_decay=0.0, schedule="cosine", **common)  # fmt: skip
    for key, method, margs in (("alone", "supervised", {}), ("hdl", "hdl", {"teacher": teacher})):
        start = time.perf_counter()
        cfg = TrainConfig(command="bench-hdl", method=method, method_args=margs, **student)
        results, _, _ = run_training(cfg, name=f"{task}-{key}", exist_ok=True)
        out[key], out[f"{key}_s"] = results["miou"], time.perf_counter() - start
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="unet-resnet50")
    p.add_argument("--teacher-iters", type=int, default=200)
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-iters", type=int, default=20)
    p.add_argument("--camvid", help="CamVid root (day sequences, val)")
    p.add_argument("--camvid-imgsz", type=int, nargs=2, default=[192, 256])
    args = p.parse_args()

    speed = speed_rows(["unet-vgg16", "unet-resnet50"], (360, 480), args.latency_iters)
    rows = [run_task("synth", "synth-gta", None, None, args)]
    if args.camvid:
        rows.append(run_task("camvid", "camvid-day", args.camvid, tuple(args.camvid_imgsz), args))

    cmd = " ".join(["python", "benchmarks/hdl.py", *sys.argv[1:]])
    ms = {(r["model"], r["backend"]): r for r in speed}
    lines = [
        f"Measured with `{cmd}` on {machine()}.",
        "",
        f"Size and CPU latency at 360x480, batch 1, {args.latency_iters} timed iterations after 3 warm-up:",
        "",
        "| model | params (M) | GFLOPs | PyTorch ms | onnxruntime ms | PyTorch vs FastLiteSSNet |",
        "|---|---|---|---|---|---|",
    ]
    student_ms = ms[("fastlitessnet", "torch")]["mean_ms"]
    for arch in ("unet-vgg16", "unet-resnet50", "fastlitessnet"):
        t, o = ms[(arch, "torch")], ms[(arch, "onnx")]
        lines.append(f"| {arch} | {t['params'] / 1e6:.2f} | {t['gflops']:.1f} | {t['mean_ms']:.1f} | "
                     f"{o['mean_ms']:.1f} | {t['mean_ms'] / student_ms:.1f}x |")  # fmt: skip
    names = {"synth": "synth-gta (val)", "camvid": "CamVid day (0016E5 val)"}
    lines += [
        "",
        f"mIoU (%) on the val split. Teacher {args.teacher}, {args.teacher_iters} iterations from scratch; "
        f"FastLiteSSNet (width 1) {args.iters} iterations, Adam lr {args.lr}, cosine, batch {args.batch}, "
        "the same seed alone and with HDL (0.5 CE + 0.3 D_CS + 0.2 Dice, no logit KD, no freeze stage):",
        "",
        "| data | teacher | student alone | student + HDL | HDL - alone | wall time alone / HDL |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {names[r['task']]} | {100 * r['teacher']:.1f} | {100 * r['alone']:.1f} | "
                     f"{100 * r['hdl']:.1f} | {100 * (r['hdl'] - r['alone']):+.1f} | "
                     f"{r['alone_s'] / 60:.1f} / {r['hdl_s'] / 60:.1f} min |")  # fmt: skip
    print("\n".join(lines))
    print(f"written to {write_block('benchmarks.md', 'hdl', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
