"""Deployment figures, measured side by side in one run on this machine; written to docs/benchmarks.md.

1. Teacher vs student, eager PyTorch vs onnxruntime, latency at the default size (fps's engine).
   Target: the exported student runs >= 1.3x faster in onnxruntime than in eager PyTorch on the CPU.
2. `predict` on a video (decode, inference, overlay, encode) against the bare model's frames/s on the
   same frames. Target: video predict keeps >= 80% of the bare model's frames/s.
3. `--int8 CKPT ...`: each trained checkpoint exported fp32 and INT8 (`export-onnx --int8`), then eager PyTorch,
   onnxruntime fp32 and INT8 (with `--openvino`, OpenVINO fp32 and INT8 too) side by side in interleaved
   rounds: latency, frames/s, file size, and mIoU on the val split evaluated from each exported file; video
   predict with the INT8 file against its bare frames/s. Targets: INT8 >= 1.8x the frames/s of fp32
   onnxruntime at an mIoU drop <= 1.0; video >= 80%.

    python benchmarks/deploy.py                      # defaults: segformer-b5 / segformer-b0 at 512x512
    python benchmarks/deploy.py --quick              # CI-sized: small sizes, few iterations
    python benchmarks/deploy.py --int8 runs/.../last.safetensors --data camvid --data-root ../shared/data/camvid
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
from _doc import machine, write_block, write_clip  # noqa: E402

from distilkit.data.synth import CAMERA, SYNTH_INFO, generate  # noqa: E402
from distilkit.engine.checkpoint import model_meta, save_model  # noqa: E402
from distilkit.engine.inference import infer_logits  # noqa: E402
from distilkit.engine.predictor import run_predict  # noqa: E402
from distilkit.engine.speed import benchmark  # noqa: E402
from distilkit.models import create_model  # noqa: E402
from distilkit.utils.files import increment_run_dir  # noqa: E402


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
    write_clip(video, (generate(CAMERA, "val", i % 50, size=size)[0] for i in range(frames)))
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


def int8_rows(ckpt: Path, args, workdir: Path) -> dict:
    """One checkpoint: fp32 and INT8 exports, their latency beside eager PyTorch, size, mIoU and video rate."""
    from distilkit.data import build_dataset
    from distilkit.data.transforms import pad_to_multiple
    from distilkit.engine.checkpoint import info_from_meta, load_model
    from distilkit.engine.exporter import export_and_verify
    from distilkit.engine.predictor import load_backend
    from distilkit.engine.speed import measure_latency
    from distilkit.engine.validator import evaluate

    cpu = torch.device("cpu")
    model, meta = load_model(ckpt)
    stem = ckpt.parent.parent.name
    files = {"onnxruntime fp32": workdir / f"{stem}.onnx", "onnxruntime int8": workdir / f"{stem}.int8.onnx"}
    if args.openvino:  # OpenVINO IR of both precisions, where the package is installed
        files |= {"OpenVINO fp32": workdir / f"{stem}.xml", "OpenVINO int8": workdir / f"{stem}.int8.xml"}
    calib = {"data": args.data, "split": "train", "images": args.calib_images, "method": args.calib_method, "seed": 0,
             "keep_float": args.keep_float}  # fmt: skip
    checks = {}
    for name, path in files.items():
        precision, fmt = name.split()[-1], "openvino" if path.suffix == ".xml" else "onnx"
        r = export_and_verify(ckpt, path, 17, args.static, 1, args.data, args.data_root, True, precision, calib,
                              args.min_agreement, fmt=fmt)  # fmt: skip
        checks[name] = r.get("vs_fp32_argmax_agreement")
    runners = {"PyTorch fp32": model, **{k: load_backend(v, cpu)[0] for k, v in files.items()}}
    x, _ = pad_to_multiple(torch.randn(1, 3, *meta["imgsz"]), 32)
    times = {k: [] for k in runners}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits every variant alike
        for name, fn in runners.items():
            times[name].append(measure_latency(fn, x, cpu, 1, args.iters)["median_ms"])
    val = build_dataset(args.data, "val", args.data_root)
    info, size = info_from_meta(meta), tuple(meta["imgsz"])
    miou = {k: 100 * evaluate(fn, val, info, size, cpu, 1, 0, show_progress=False)["miou"] for k, fn in runners.items()}
    sizes = {"PyTorch fp32": ckpt.stat().st_size}
    sizes |= {k: v.stat().st_size + (v.with_suffix(".bin").stat().st_size if v.suffix == ".xml" else 0)
              for k, v in files.items()}  # fmt: skip
    video = video_rate(files["onnxruntime int8"], val, size, workdir)
    return {"checkpoint": str(ckpt), "model": meta["arch"]["name"], "imgsz": list(x.shape[-2:]),
            "median_ms": {k: statistics.median(v) for k, v in times.items()}, "miou": miou, "bytes": sizes,
            "int8_agreement": checks["onnxruntime int8"], "video": video}  # fmt: skip


def video_rate(onnx_file: Path, val, size: tuple[int, int], workdir: Path, frames: int = 48) -> dict:
    """predict on a video of real val frames with `onnx_file` against that file's bare frames/s on them."""
    from distilkit.data.transforms import normalize, to_tensor
    from distilkit.engine.predictor import OnnxModel

    images = [val.load(i % len(val))[0] for i in range(frames)]
    video = write_clip(workdir / "val.mp4", images)
    model = OnnxModel(onnx_file, torch.device("cpu"))
    mean, std = model.meta["mean"], model.meta["std"]
    xs = [normalize(to_tensor(im), mean, std)[None] for im in images[:4]]
    bares, predicts = [], []
    for r in range(3):
        start = time.perf_counter()
        for i in range(frames // 4):
            infer_logits(model, xs[i % 4], size)
        bares.append((frames // 4) / (time.perf_counter() - start))
        start = time.perf_counter()
        summary = run_predict(str(video), onnx_file, "onnx", torch.device("cpu"),
                              lambda r=r: increment_run_dir("p", out=workdir / f"v{r}"), batch=1)  # fmt: skip
        predicts.append(summary["count"] / (time.perf_counter() - start))
    bare, predict = statistics.median(bares), statistics.median(predicts)
    return {"bare_fps": bare, "predict_fps": predict, "ratio": predict / bare, "frames": frames}


def int8_part(args) -> None:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        results = [int8_rows(Path(c), args, Path(tmp)) for c in args.int8]
    out = Path("runs/bench-deploy")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"int8{args.tag}.json").write_text(json.dumps(results, indent=1))
    cmd = " ".join(["python", "benchmarks/deploy.py", *sys.argv[1:]])
    lines = [
        f"Measured with `{cmd}` on {machine()}; batch 1 at each model's training size, median latency of "
        f"{args.rounds} interleaved rounds of {args.iters} runs; mIoU on {args.data} val (whole images) computed "
        f"from each file; INT8: QDQ, per-channel int8 weights, uint8 activations, {args.calib_method} ranges "
        f"from {args.calib_images} seeded train images"
        + (f"; left in float: {', '.join(f'`{k}`' for k in args.keep_float)}." if args.keep_float else "."),
        "",
        "| model | input | variant | file MB | median ms | frames/s | speed-up vs onnxruntime fp32 | val mIoU |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        base = r["median_ms"]["onnxruntime fp32"]
        for k, ms in r["median_ms"].items():
            lines.append(f"| {r['model']} | {r['imgsz'][0]}x{r['imgsz'][1]} | {k} | {r['bytes'][k] / 2**20:.1f} | "
                         f"{ms:.0f} | {1000 / ms:.1f} | {base / ms:.2f}x | {r['miou'][k]:.2f} |")  # fmt: skip
    lines.append("")
    for r in results:
        speed = r["median_ms"]["onnxruntime fp32"] / r["median_ms"]["onnxruntime int8"]
        drop = r["miou"]["onnxruntime fp32"] - r["miou"]["onnxruntime int8"]
        v = r["video"]
        lines.append(
            f"- {r['model']}: INT8 **{speed:.2f}x** the frames/s of fp32 onnxruntime (target >= 1.8x: "
            f"{'met' if speed >= 1.8 else 'NOT met'}), mIoU {drop:+.2f} lower (target <= 1.0: "
            f"{'met' if drop <= 1.0 else 'NOT met'}), argmax agreement with fp32 {100 * r['int8_agreement']:.2f}%; "
            f"video predict with the INT8 file {v['predict_fps']:.1f} frames/s vs its bare {v['bare_fps']:.1f} = "
            f"**{100 * v['ratio']:.0f}%** (target >= 80%: {'met' if v['ratio'] >= 0.8 else 'NOT met'})."
        )
    print("\n".join(lines))
    print(f"written to {write_block('benchmarks.md', f'deploy-int8{args.tag}', chr(10).join(lines))}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="segformer-b5")
    p.add_argument("--student", default="segformer-b0")
    p.add_argument("--imgsz", type=int, nargs=2, default=[512, 512])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--video-size", type=int, nargs=2, default=[128, 256], help="synth-city's default size")
    p.add_argument("--frames", type=int, default=120)
    p.add_argument("--quick", action="store_true", help="CI-sized run (not for the docs' figures)")
    p.add_argument("--int8", nargs="+", help="trained checkpoints: the INT8 part only")
    p.add_argument("--data", default="camvid", help="INT8 part: calibration (train) and evaluation (val) data")
    p.add_argument("--data-root")
    p.add_argument("--calib-images", type=int, default=32)
    p.add_argument("--calib-method", default="minmax")
    p.add_argument("--static", action="store_true", help="INT8 part: static-shape exports")
    p.add_argument("--openvino", action="store_true", help="INT8 part: OpenVINO IR rows too (pip install openvino)")
    p.add_argument("--min-agreement", type=float,
                   help="INT8 part: export-onnx's argmax agreement bar (default its own, 0.97): lower it to measure "
                        "a model that bar refuses")  # fmt: skip
    p.add_argument("--keep-float", nargs="*", default=[], help="INT8 part: node-name prefixes left in float")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tag", default="", help="INT8 part: a suffix for its docs block and JSON (another setting)")
    args = p.parse_args()
    if args.int8:
        return int8_part(args)
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
    from distilkit.errors import DistilkitError

    try:
        main()
    except DistilkitError as e:  # an INT8 model the agreement bar refuses, a missing checkpoint: one line
        sys.exit(f"error: {e}")
