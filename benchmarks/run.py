"""distilkit measured against its own baselines, side by side in one run on this machine.

1. cost: for every method (train-teacher / source-only, pixel KD, SDD, HDL, CWD, SAKD, DUDA) one engine step on
   real batches against the sum of the bare forward (and backward) passes its networks make in that step,
   replayed alone (target: at most 1.15x); images/s, seconds per epoch and peak memory (a fresh process
   per method, so each peak is its own).
2. inference: teachers and students in eager PyTorch and onnxruntime, latency, GFLOPs and the achieved
   GFLOP/s against this CPU's measured fp32 matmul peak.
3. accuracy: target mIoU of the source-only student, pixel KD, SDD, HDL, CWD, SAKD and DUDA students and their
   teacher, on synth-gta -> synth-city (and CamVid day -> dusk with --camvid), all from the same teacher.

    python benchmarks/run.py                          # cost + inference; written to docs/benchmarks.md
    python benchmarks/run.py --parts accuracy --camvid ../shared/data/camvid --iters 300
    python benchmarks/run.py --quick                  # CI-sized: every part, tiny, printed, nothing written
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _doc import augment_args, augment_of, bar_chart, finished, machine, write_block  # noqa: E402

from distilkit.data import build_dataset  # noqa: E402
from distilkit.data.loader import train_loader  # noqa: E402
from distilkit.engine.checkpoint import model_meta, read_meta, save_model  # noqa: E402
from distilkit.engine.config import TrainConfig  # noqa: E402
from distilkit.engine.trainer import Trainer, run_training  # noqa: E402
from distilkit.methods import build_method  # noqa: E402
from distilkit.models import create_model  # noqa: E402

METHODS = ["supervised", "kd", "sdd", "hdl", "cwd", "sakd", "duda"]
LABELS = {"supervised": "source-only (train-teacher)", "kd": "pixel KD", "sdd": "SDD", "hdl": "HDL", "cwd": "CWD",
          "sakd": "SAKD (r = 0.5, over KD)", "duda": "DUDA (stage 1: LT, LS, SS)"}  # fmt: skip


def teacher_file(arch: str, folder: Path) -> Path:
    """An untrained teacher checkpoint: a step's cost does not depend on the weights' values."""
    from distilkit.data.synth import SYNTH_INFO

    torch.manual_seed(0)
    model = create_model(arch, SYNTH_INFO.num_classes)
    path = folder / f"{arch}.safetensors"
    save_model(path, model, model_meta(model, SYNTH_INFO, SYNTH_INFO.default_imgsz, "bench"))
    return path


def method_config(method: str, args, teacher: str | None, iters: int = 10) -> TrainConfig:
    extra = {"teacher": teacher}
    if method == "sakd":
        extra |= {"ratio": 0.5, "epochs": 1}
    if method == "duda":
        extra = {"tgt": args.target, "stage1_iters": iters, "stage3_iters": iters, "teacher_model": args.teacher,
                 "inconsistency_images": 2}  # fmt: skip
    iters = 2 * iters if method == "duda" else iters  # DUDA's length is its two stages
    return TrainConfig(command="bench-run", method=method, data="synth-gta", model=args.student, iters=iters,
                       imgsz=tuple(args.imgsz), batch=args.batch, workers=0, device="cpu", seed=0,
                       val_limit=2, method_args=extra if method != "supervised" else {})  # fmt: skip


# ---- 1. cost ---------------------------------------------------------------------------------------------
def record_calls(method, step) -> list[tuple]:
    """(module, input shapes, keyword arguments, grad enabled) of every network call in one step."""
    calls = []

    def hook(module, inputs, kwargs, output):
        shapes = [tuple(x.shape) for x in inputs if isinstance(x, torch.Tensor)]
        calls.append((module, shapes, kwargs, torch.is_grad_enabled()))

    modules = []
    for net in method.networks().values():
        is_list = isinstance(net, torch.nn.ModuleList | torch.nn.ModuleDict)
        modules += list(net.children()) if is_list else [net]  # HDL's adapters are called one by one
    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    step()
    for h in handles:
        h.remove()
    return calls


def replay(calls: list[tuple]) -> float:
    """The same calls alone, on random inputs of the same shapes: forward, and backward where a gradient
    was taken. Returns seconds."""
    inputs = [[torch.randn(s) for s in shapes] for _, shapes, _, _ in calls]
    start = time.perf_counter()
    for (module, _, kwargs, grad), xs in zip(calls, inputs, strict=True):
        with torch.set_grad_enabled(grad):
            out = module(*xs, **kwargs)
        if grad:
            flat = out if isinstance(out, tuple | list) else [out]
            tensors = [t for o in flat for t in (o.values() if isinstance(o, dict) else [o])]
            tensors = [u for t in tensors for u in (t if isinstance(t, list | tuple) else [t])]
            sum(t.float().sum() for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad).backward()
    return time.perf_counter() - start


def cost_of(method_name: str, args, teacher: str | None, repeats: int) -> dict:
    """One method's step time against its bare passes (alternating, median of `repeats`), in this process."""
    torch.set_num_threads(args.threads)
    cfg = method_config(method_name, args, teacher, iters=10**6)
    method = build_method(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, method, Path(tmp), torch.device("cpu"))
    streams = {k: iter(train_loader(v, cfg.batch, 0, i)) for i, (k, v) in enumerate(method.train_views().items())}
    for net in method.networks().values():
        net.train()

    def step():
        trainer.train_step({k: tuple(next(s)) for k, s in streams.items()})

    step()  # warm-up (and SAKD's first selection)
    calls = record_calls(method, step)
    replay(calls)
    steps, bare = [], []
    for _ in range(repeats):
        batch = {k: tuple(next(s)) for k, s in streams.items()}
        start = time.perf_counter()
        trainer.train_step(batch)
        steps.append(time.perf_counter() - start)
        bare.append(replay(calls))
    n = len(build_dataset("synth-gta", "train"))
    step_s, bare_s = statistics.median(steps), statistics.median(bare)
    images = cfg.batch * len(streams)
    return {"method": method_name, "step_s": step_s, "bare_s": bare_s, "calls": len(calls),
            "images_per_s": images / step_s, "epoch_s": step_s * n / cfg.batch,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip


def cost(args, folder: Path) -> tuple[list[str], dict]:
    teacher = str(teacher_file(args.teacher, folder))
    rows = []
    ctx = mp.get_context("spawn")
    for m in METHODS:
        with ctx.Pool(1) as pool:  # a fresh process: its peak memory is this method's alone
            rows.append(pool.apply(cost_of, (m, args, None if m in ("supervised", "duda") else teacher, args.repeats)))
        print(rows[-1], flush=True)
    lines = [
        f"Teacher {args.teacher}, student {args.student} (DUDA: LT and LS {args.teacher}, SS {args.student}), "
        f"synth-gta crops {args.imgsz[0]}x{args.imgsz[1]}, batch {args.batch} (DUDA: {args.batch} source + "
        f"{args.batch} target), {args.threads} threads, median of {args.repeats} steps alternating with their "
        "bare passes. *Bare passes*: every network call the step made (recorded with forward hooks), replayed "
        "alone on random inputs of the same shapes, with a backward pass where the step took a gradient; the "
        "ratio is what the method and engine add (losses, pseudo-labels, mixing, EMA, optimiser). Seconds per "
        "epoch: 2000 synth-gta images / batch x step time (SAKD trains r N of them per epoch, plus its "
        "difficulty pass: see its own section). Peak memory: the process's peak RSS (model, data, autograd).",
        "",
        "| method | step ms | bare passes ms (calls) | step / bare | images/s | s / epoch | peak RSS MiB |",
        "|---|---|---|---|---|---|---|",
    ]
    ratios = {LABELS[r["method"]].split(" (")[0]: r["step_s"] / r["bare_s"] for r in rows}
    plot = {"title": "distill step / its networks' bare passes", "ylabel": "ratio", "line": 1.15,
            "groups": {"step / bare": ratios}}  # fmt: skip
    for r in rows:
        ratio = r["step_s"] / r["bare_s"]
        lines.append(f"| {LABELS[r['method']]} | {1000 * r['step_s']:.0f} | {1000 * r['bare_s']:.0f} ({r['calls']}) | "
                     f"{ratio:.2f}x{'' if ratio <= 1.15 else ' (over 1.15x)'} | {r['images_per_s']:.1f} | "
                     f"{r['epoch_s']:.0f} | {r['peak_mb']:.0f} |")  # fmt: skip
    return lines, plot


# ---- 2. inference ----------------------------------------------------------------------------------------
def matmul_peak(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """This CPU's fp32 GFLOP/s on a large square matmul (best of `repeats`), the roofline the models meet."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def inference(args, folder: Path) -> tuple[list[str], dict | None]:
    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.speed import benchmark

    peak = matmul_peak(args.threads)
    models = []
    for arch in args.infer_models:
        torch.manual_seed(0)
        model = create_model(arch, SYNTH_INFO.num_classes).eval()
        models.append((arch, model, model_meta(model, SYNTH_INFO, tuple(args.infer_imgsz), "bench")))
    rows = benchmark(models, ["torch", "onnxruntime"], torch.device("cpu"), tuple(args.infer_imgsz), 1, False,
                     args.warmup, args.iters, folder)  # fmt: skip
    lines = [
        f"Batch 1 at {args.infer_imgsz[0]}x{args.infer_imgsz[1]}, {args.threads} threads, mean of {args.iters} "
        f"runs after {args.warmup} warm-up. This CPU's fp32 matmul peak (2048 x 2048, best of 10): "
        f"**{peak:.0f} GFLOP/s**; achieved = forward GFLOPs (torch's FLOP counter) / latency.",
        "",
        "| model | params M | GFLOPs | backend | ms | achieved GFLOP/s | of matmul peak |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        achieved = r["gflops"] / (r["mean_ms"] / 1000)
        lines.append(f"| {r['model']} | {r['params'] / 1e6:.1f} | {r['gflops']:.1f} | {r['backend']} | "
                     f"{r['mean_ms']:.0f} | {achieved:.0f} | {100 * achieved / peak:.0f}% |")  # fmt: skip
    return lines, None


# ---- 3. accuracy -----------------------------------------------------------------------------------------
def accuracy_task(task: str, src: str, tgt: str, split: str, root, imgsz, args) -> dict:
    """Train the teacher on the source, then every method's student from it; mIoU on the target split."""
    common = dict(data=src, data_root=root, imgsz=imgsz, batch=args.batch, workers=0, device="cpu", seed=0,
                  val_data=tgt, val_split=split, val_limit=args.val_limit)  # fmt: skip
    out, aug = {}, augment_of(args)  # every labelled crop, in every arm (DUDA: its source crops)

    def train(name: str, method: str, model: str, iters: int = args.iters, method_args=None, **kw) -> Path:
        cfg = TrainConfig(command="bench-run", method=method, model=model, iters=iters, val_every=10**9,
                          warmup=iters // 10, method_args={**(method_args or {}), "aug": aug},
                          **{**common, **kw})  # fmt: skip
        done = Path("runs") / "bench-run" / f"{task}-{name}"
        if args.reuse and finished(done, cfg):  # the same experiment ran to its end before: its final mIoU
            out[name] = {"miou": read_meta(done / "weights" / "last.safetensors")["metrics"]["miou"]}
            return done
        start = time.perf_counter()
        results, run_dir, _ = run_training(cfg, name=f"{task}-{name}", exist_ok=True)
        out[name] = {"miou": results["miou"], "wall_s": time.perf_counter() - start, "iters": cfg.iters}
        return run_dir

    last = Path("weights") / "last.safetensors"
    teacher = str(train("teacher", "supervised", args.teacher, iters=args.teacher_iters or 2 * args.iters) / last)
    source_only = str(train("source-only", "supervised", args.student) / last)
    for m in ("kd", "sdd", "hdl", "cwd"):
        train(m, m, args.student, method_args={"teacher": teacher})
    # pixel KD at classification KD's T = 4 too: its default until 2026-12-07, measured in the same run
    train("kd-t4", "kd", args.student, method_args={"teacher": teacher, "temperature": 4.0})
    # r = 0.5 and the epochs that make about as many images as the other runs (fewer images: a smaller r)
    images, n = args.iters * args.batch, len(build_dataset(src, "train", root))
    ratio = min(0.5, images / n)
    epochs = max(1, round(images / (ratio * n)))
    train("sakd", "sakd", args.student, method_args={"teacher": teacher, "ratio": ratio, "epochs": epochs})
    half = args.iters // 2
    # DUDA adapts the source-trained pair and the source-only student (the paper's lr: all three are warm)
    train("duda", "duda", args.student, iters=2 * half, lr=6e-5, head_lr_mult=10.0,
          method_args={"tgt": tgt, "tgt_val_split": split, "teacher": teacher, "student": source_only,
                       "teacher_lr_mult": 1.0, "stage1_iters": half, "stage3_iters": half,
                       "inconsistency_images": 50})  # fmt: skip
    return out


def accuracy(args) -> tuple[list[str], dict]:
    tasks = [("synth", "synth-gta", "synth-city", "val", None, tuple(args.imgsz))]
    if args.camvid:
        tasks.append(("camvid", "camvid-day", "camvid-dusk", "train", args.camvid, tuple(args.camvid_imgsz)))
    results = {t[0]: accuracy_task(*t, args) for t in tasks}
    names = {"synth": "synth-gta -> synth-city (val)", "camvid": "CamVid day -> dusk (0001TP)"}
    keys = ["teacher", "source-only", "kd", "kd-t4", "sdd", "hdl", "cwd", "sakd", "duda"]
    headers = {"kd": "kd (T = 1)", "kd-t4": "kd (T = 4)"}
    lines = [
        f"Teacher {args.teacher} ({args.teacher_iters or 2 * args.iters} iterations), students {args.student}, "
        f"{args.iters} iterations each (SAKD: the epochs of r = 0.5 selections that make about as many images; "
        "DUDA: half pre-adaptation, half fine-tuning, its networks warm-started from the teacher and the "
        f"source-only student, AdamW 6e-5, head x10), batch {args.batch}, seed 0, no pretrained encoders; "
        f"labelled crops in every arm: jitter {args.jitter}, hue {args.hue}, greyscale p = {args.grey}. "
        "Target mIoU (%) on the target's labels, used only to measure; every student distils the same "
        "source-trained teacher.",
        "",
        "| task | " + " | ".join(headers.get(k, k) for k in keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for task, r in results.items():
        lines.append(f"| {names[task]} | " + " | ".join(f"{100 * r[k]['miou']:.1f}" for k in keys) + " |")
    groups = {names[task]: {k: 100 * r[k]["miou"] for k in keys} for task, r in results.items()}
    return lines, {"title": "target mIoU by method", "ylabel": "mIoU (%)", "groups": groups}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=["cost", "inference", "accuracy"], help="default: cost inference")
    p.add_argument("--quick", action="store_true", help="every part, CI-sized; prints, writes nothing")
    p.add_argument("--teacher", default="segformer-b1")
    p.add_argument("--student", default="segformer-b0")
    p.add_argument("--target", default="synth-city")
    p.add_argument("--imgsz", type=int, nargs=2, default=[128, 256])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--repeats", type=int, default=5)
    models = ["segformer-b5", "segformer-b1", "segformer-b0", "unet-resnet50", "fastlitessnet"]
    p.add_argument("--infer-models", nargs="+", default=models)
    p.add_argument("--infer-imgsz", type=int, nargs=2, default=[512, 512])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--reuse", action="store_true", help="accuracy: take finished runs of the same experiments")
    p.add_argument("--teacher-iters", type=int, help="accuracy: the teacher's iterations (default: 2 x --iters)")
    p.add_argument("--camvid", help="CamVid root: adds the day -> dusk task to the accuracy part")
    p.add_argument("--camvid-imgsz", type=int, nargs=2, default=[192, 256])
    p.add_argument("--val-limit", type=int, default=None)
    augment_args(p)
    args = p.parse_args()
    args.parts = args.parts or (["cost", "inference", "accuracy"] if args.quick else ["cost", "inference"])
    if args.quick:
        args.imgsz, args.batch, args.repeats, args.iters, args.warmup = [64, 128], 2, 2, 4, 1
        args.infer_models, args.infer_imgsz, args.val_limit, args.camvid_imgsz = (
            ["segformer-b0"],
            [64, 128],
            4,
            [64, 96],
        )

    cmd = " ".join(["python", "benchmarks/run.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            lines, plot = (
                {"cost": cost, "inference": inference}[part](args, Path(tmp)) if part != "accuracy" else accuracy(args)
            )
            if plot and not args.quick:
                image = bar_chart(f"run-{part}.png", **plot)
                lines += ["", f"![{plot['title']}]({image.relative_to(image.parents[1])})"]
            body = "\n".join([f"Measured with `{cmd}` on {machine()}.", "", *lines])
            print(body)
            if not args.quick:
                print(f"written to {write_block('benchmarks.md', f'run-{part}', body)}")


if __name__ == "__main__":
    main()
