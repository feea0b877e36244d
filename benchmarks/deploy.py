"""Deployment figures, measured side by side in one run on this machine; written to docs/benchmarks.md.

1. Teacher vs student, eager PyTorch vs onnxruntime, latency at the default size (fps's engine).
   Target: the exported student runs >= 1.3x faster in onnxruntime than in eager PyTorch on the CPU.
2. `predict` on a video (decode, inference, overlay, encode) against the bare model's frames/s on the
   same frames. Target: video predict keeps >= 80% of the bare model's frames/s.

    python benchmarks/deploy.py                      # defaults: segformer-b5 / segformer-b0 at 512x512
    python benchmarks/deploy.py --quick              # CI-sized: small sizes, few iterations
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import machine, write_block  # noqa: E402

from distilkit.data.synth import CAMERA, SYNTH_INFO, generate  # noqa: E402
from distilkit.engine.checkpoint import model_meta, save_model  # noqa: E402
from distilkit.engine.inference import infer_logits  # noqa: E402
from distilkit.engine.predictor import run_predict  # noqa: E402
from distilkit.engine.speed import benchmark  # noqa: E402
from distilkit.models import create_model  # noqa: E402
from distilkit.utils.files import increment_run_dir  # noqa: E402


def write_video(path: Path, frames: int, size: tuple[int, int], rate: int = 30) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            image = generate(CAMERA, "val", i % 50, size=size)[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def video_throughput(
    student: str, size: tuple[int, int], frames: int, batch: int, workdir: Path, rounds: int = 3
) -> dict:
    """predict's frames/s on a video vs the bare model's frames/s (same frames, same batch, same path)."""
    from distilkit.data.transforms import normalize, to_tensor

    torch.manual_seed(0)
    model = create_model(student, SYNTH_INFO.num_classes).eval()
    ckpt = workdir / "student.safetensors"
    save_model(ckpt, model, model_meta(model, SYNTH_INFO, size, "none"))
    video = workdir / "clip.mp4"
    write_video(video, frames, size)
    x = torch.stack([normalize(to_tensor(generate(CAMERA, "val", i, size=size)[0]), SYNTH_INFO.mean, SYNTH_INFO.std)
                     for i in range(batch)])  # fmt: skip
    infer_logits(model, x, size)  # warm-up
    run_predict(str(video), ckpt, "torch", torch.device("cpu"), lambda: increment_run_dir("p", out=workdir / "w"))
    bares, predicts = [], []
    for r in range(rounds):  # interleaved, so a slow spell of the machine hits both sides alike
        start = time.perf_counter()
        for _ in range(frames // batch):
            infer_logits(model, x, size)
        bares.append((frames // batch) * batch / (time.perf_counter() - start))
        start = time.perf_counter()
        summary = run_predict(
            str(video), ckpt, "torch", torch.device("cpu"), lambda r=r: increment_run_dir("p", out=workdir / f"r{r}"),
            batch=batch,
        )  # fmt: skip
        predicts.append(summary["count"] / (time.perf_counter() - start))
    bare, predict = statistics.median(bares), statistics.median(predicts)
    return {
        "bare_fps": bare,
        "predict_fps": predict,
        "ratio": predict / bare,
        "frames": summary["count"],
        "rounds": rounds,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="segformer-b5")
    p.add_argument("--student", default="segformer-b0")
    p.add_argument("--imgsz", type=int, nargs=2, default=[512, 512])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--video-size", type=int, nargs=2, default=[128, 256], help="synth-city's default size")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--quick", action="store_true", help="CI-sized run (not for the docs' figures)")
    args = p.parse_args()
    if args.quick:
        args.teacher, args.imgsz, args.iters, args.frames = "segformer-b1", [128, 256], 5, 16

    size = tuple(args.imgsz)
    models = []
    for arch in (args.teacher, args.student):
        torch.manual_seed(0)
        net = create_model(arch, SYNTH_INFO.num_classes).eval()
        models.append((arch, net, model_meta(net, SYNTH_INFO, size, "none")))
    with tempfile.TemporaryDirectory() as tmp:
        rows = benchmark(models, ["torch", "onnx"], torch.device("cpu"), size, 1, False, 3, args.iters, tmp)
        video = video_throughput(args.student, tuple(args.video_size), args.frames, 4, Path(tmp))

    ms = {(r["model"], r["backend"]): r["mean_ms"] for r in rows}
    s_ratio = ms[(args.student, "torch")] / ms[(args.student, "onnx")]
    cmd = " ".join(["python", "benchmarks/deploy.py", *sys.argv[1:]])
    lines = [
        f"Measured with `{cmd}` on {machine()}; batch 1, {args.iters} timed iterations after 3 warm-up.",
        "",
        "| model | backend | params (M) | GFLOPs | mean ms | median ms | p90 ms | frames/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['params'] / 1e6:.2f} | {r['gflops']:.2f} | {r['mean_ms']:.1f} "
            f"| {r['median_ms']:.1f} | {r['p90_ms']:.1f} | {r['fps']:.2f} |"
        )
    lines += [
        "",
        f"- Student vs teacher at {size[0]}x{size[1]}: "
        f"{ms[(args.teacher, 'torch')] / ms[(args.student, 'torch')]:.1f}x faster in PyTorch, "
        f"{ms[(args.teacher, 'onnx')] / ms[(args.student, 'onnx')]:.1f}x in onnxruntime.",
        f"- Exported student, onnxruntime vs eager PyTorch: **{s_ratio:.2f}x** (target >= 1.3x: "
        f"{'met' if s_ratio >= 1.3 else 'NOT met'}).",
        f"- `predict` on a {video['frames']}-frame {args.video_size[0]}x{args.video_size[1]} video ({args.student}, "
        f"batch 4, decode + inference + overlay + H.264 encode; median of {video['rounds']} interleaved rounds): "
        f"{video['predict_fps']:.1f} frames/s vs the bare "
        f"model's {video['bare_fps']:.1f} frames/s = **{100 * video['ratio']:.0f}%** (target >= 80%: "
        f"{'met' if video['ratio'] >= 0.8 else 'NOT met'}).",
    ]
    print("\n".join(lines))
    if not args.quick:
        print(f"written to {write_block('benchmarks.md', 'deploy', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
