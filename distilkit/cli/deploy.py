"""Deployment commands: predict, fps, export-onnx. Each parses options and calls the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distilkit.cli.options import Batch, DataRoot, Device, ExistOk, Name, Out, user_errors

Backend = Annotated[str, typer.Option("--backend", help="torch (a .safetensors checkpoint) or onnx (an .onnx export).")]
Half = Annotated[bool, typer.Option("--half", help="fp16 inference (CUDA only).")]
DEFAULT_PAIR = ("segformer-b5", "segformer-b0")  # DUDA's teacher and student


@user_errors
def predict(
    source: Annotated[str, typer.Argument(help="An image, a folder, a glob (quoted) or a video file.")],
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Checkpoint, .onnx or OpenVINO .xml (default: newest best under runs/)."),
    ] = None,
    backend: Backend = "torch",
    mode: Annotated[str, typer.Option("--mode", help="whole (resized image) or slide (sliding window).")] = "whole",
    save_mask: Annotated[
        bool | None,
        typer.Option("--save-mask/--no-save-mask", help="Palette PNG label maps (default: images yes, video no)."),
    ] = None,
    save_overlay: Annotated[
        bool, typer.Option("--save-overlay/--no-save-overlay", help="Image blended with the mask (images).")
    ] = True,
    alpha: Annotated[float, typer.Option("--alpha", help="Overlay opacity.")] = 0.5,
    half: Half = False,
    batch: Batch = 4,
    device: Device = "auto",
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Segment an image, a folder, a glob or a video (streamed frame by frame) with a checkpoint or ONNX file."""
    from distilkit.engine.predictor import run_predict
    from distilkit.utils.device import select_device
    from distilkit.utils.files import increment_run_dir

    if weights is not None and weights.suffix == ".onnx":
        backend = "onnx"
    summary = run_predict(
        source, weights, backend, select_device(device), lambda: increment_run_dir("predict", name, out, exist_ok),
        mode, batch, half, save_mask, save_overlay, alpha,
    )  # fmt: skip
    what = (
        f"{summary['count']} frames -> {summary['video']}"
        if summary["kind"] == "video"
        else f"{summary['count']} images"
    )
    typer.echo(f"{what}; results in {summary['run_dir']}")


@user_errors
def fps(
    weights: Annotated[
        list[Path] | None,
        typer.Argument(help="Checkpoints, .onnx or OpenVINO .xml files (default: the default teacher/student)."),
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Architectures to time when no weights are given (repeat).")
    ] = None,
    backend: Annotated[str, typer.Option("--backend", help="torch, onnx or all.")] = "torch",
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed iterations first.")] = 3,
    iters: Annotated[int, typer.Option("--iters", help="Timed iterations.")] = 20,
    imgsz: Annotated[
        tuple[int, int] | None,
        typer.Option(
            "--imgsz",
            show_default=False,
            help="Input size H W (default: the checkpoints' training size; 512 512 for bare architectures).",
        ),
    ] = None,  # fmt: skip
    batch: Batch = 1,
    half: Half = False,
    device: Device = "auto",
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Latency (mean, median, p90), frames/s, parameters, GFLOPs and peak memory; teacher/student speed-up."""
    import tempfile

    from rich.table import Table

    from distilkit.data.synth import SYNTH_INFO
    from distilkit.engine.checkpoint import model_meta
    from distilkit.engine.predictor import load_backend
    from distilkit.engine.report import print_table
    from distilkit.engine.speed import benchmark, noisy
    from distilkit.errors import DistilkitError
    from distilkit.models import create_model
    from distilkit.utils.console import warn
    from distilkit.utils.device import select_device
    from distilkit.utils.files import increment_run_dir, write_json
    from distilkit.utils.limits import check_fits

    dev = select_device(device)
    if backend not in ("torch", "onnx", "all"):
        raise DistilkitError(f"--backend {backend}: expected torch, onnx or all")
    backends = ["torch", "onnx"] if backend == "all" else [backend]
    models = []
    if weights:
        for w in weights:
            loaded, meta = load_backend(w, select_device("cpu"))
            exported = w.suffix in (".onnx", ".xml")
            models.append((f"{meta['arch']['name']} ({w.name})", w if exported else loaded, meta))
        if any(w.suffix in (".onnx", ".xml") for w in weights) and backend == "torch":
            backends = ["torch", "onnx"]
    size = tuple(imgsz) if imgsz else input_size([meta for _, _, meta in models])
    check_fits(batch, *size, training=False)
    if not weights:
        for arch in model or DEFAULT_PAIR:
            net = create_model(arch, SYNTH_INFO.num_classes).eval()
            models.append((arch, net, model_meta(net, SYNTH_INFO, size, "none")))
    with tempfile.TemporaryDirectory() as tmp:
        rows = benchmark(models, backends, dev, size, batch, half, warmup, iters, tmp)
    speedups = speedup_lines(rows)  # saved before anything is printed: a failure to print loses no result
    run_dir = increment_run_dir("fps", name, out, exist_ok)
    write_json(run_dir / "fps.json", {"device": str(dev), "imgsz": list(size), "batch": batch, "rows": rows,
                                      "speedups": speedups})  # fmt: skip
    table = Table(title=f"fps on {dev.type} at {size[0]}x{size[1]}, batch {batch}{', fp16' if half else ''}")
    for col in ("model", "backend", "params (M)", "GFLOPs", "mean ms", "median ms", "p90 ms", "frames/s", "peak MiB"):
        table.add_column(col, justify="left" if col in ("model", "backend") else "right")
    for r in rows:
        table.add_row(
            r["model"], r["backend"], f"{r['params'] / 1e6:.2f}" if r["params"] else "-",
            f"{r['gflops']:.2f}" if r["gflops"] is not None else "-", f"{r['mean_ms']:.2f}",
            f"{r['median_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['fps']:.1f}", f"{r['peak_mem_mb']:.0f}",
        )  # fmt: skip
    print_table(table)
    spread = [f"{r['model']} ({r['backend']})" for r in rows if noisy(r)]
    if spread:
        warn(f"noisy timings for {', '.join(spread)}: p90 or mean well above the median (another process on the "
             "CPU?); quote the median, or rerun with more --iters on an idle machine")  # fmt: skip
    for line in speedups:
        typer.echo(line)
    typer.echo(f"results: {run_dir / 'fps.json'}")


def input_size(metas: list[dict]) -> tuple[int, int]:
    """fps's default input: the checkpoints' training size (the first one's where they differ, said aloud), or
    512x512 for bare architectures."""
    from distilkit.utils.console import warn

    sizes = [tuple(m["imgsz"]) for m in metas if m.get("imgsz")]
    if not sizes:
        return (512, 512)
    if len(set(sizes)) > 1:
        warn(f"the models were trained at different sizes ({', '.join(f'{h}x{w}' for h, w in sizes)}); timing all "
             f"at {sizes[0][0]}x{sizes[0][1]} (--imgsz H W to choose)")  # fmt: skip
    return sizes[0]


def speedup_lines(rows: list[dict]) -> list[str]:
    """Per backend: each model's speed-up over the slowest (the teacher) one."""
    lines = []
    for backend in dict.fromkeys(r["backend"] for r in rows):
        group = [r for r in rows if r["backend"] == backend]
        if len(group) < 2:
            continue
        slowest = max(group, key=lambda r: r["mean_ms"])
        for r in group:
            if r is not slowest:
                ratio = slowest["mean_ms"] / r["mean_ms"]
                lines.append(f"{backend}: {r['model']} is {ratio:.2f}x faster than {slowest['model']}")
    return lines


@user_errors
def export_onnx(
    weights: Annotated[
        Path | None, typer.Argument(help="A distilkit checkpoint (default: newest best under runs/).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output .onnx (or .xml) path (default: beside the checkpoint).")
    ] = None,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 17,
    static: Annotated[bool, typer.Option("--static", help="Fix batch, height and width (default: dynamic).")] = False,
    data: Annotated[
        str | None, typer.Option("--data", help="Data set whose first val image verifies the export.")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="onnx, or openvino (an OpenVINO IR .xml/.bin; pip install openvino).")
    ] = "onnx",
    int8: Annotated[bool, typer.Option("--int8", help="INT8 post-training static quantisation (QDQ, CPU).")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="FP16 weights and activations (GPU deployment).")] = False,
    calib_data: Annotated[
        str | None, typer.Option("--calib-data", help="INT8: calibration data set (default: the model's own).")
    ] = None,
    calib_split: Annotated[str, typer.Option("--calib-split", help="INT8: split the images come from.")] = "train",
    calib_images: Annotated[int, typer.Option("--calib-images", help="INT8: calibration images (seeded).")] = 32,
    calib_method: Annotated[
        str, typer.Option("--calib-method", help="INT8: activation ranges by minmax, entropy or percentile.")
    ] = "minmax",
    min_agreement: Annotated[
        float | None,
        typer.Option(
            "--min-agreement",
            help="Argmax agreement with fp32 under which the export fails (default: 0.97 INT8, 0.995 FP16).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    keep_float: Annotated[
        list[str] | None,
        typer.Option(
            "--keep-float",
            help="INT8: ONNX node-name prefix left in float, e.g. /encoder/model/conv_stem (repeatable).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="INT8: which calibration images are drawn.")] = 0,
    batch: Batch = 1,
    data_root: DataRoot = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Replace an existing output file.")] = False,
) -> None:
    """Export to ONNX or OpenVINO (fp32, --fp16 or --int8; metadata: classes, palette, normalisation, precision),
    check it, and verify it against PyTorch."""
    from distilkit.engine.checkpoint import resolve_weights
    from distilkit.engine.exporter import export_and_verify
    from distilkit.errors import DistilkitError

    if int8 and fp16:
        raise DistilkitError("--int8 and --fp16 together: choose one precision")
    precision = "int8" if int8 else "fp16" if fp16 else "fp32"
    calib = {"data": calib_data, "split": calib_split, "images": calib_images, "method": calib_method, "seed": seed,
             "keep_float": keep_float or []}  # fmt: skip
    weights = resolve_weights(weights)
    r = export_and_verify(weights, out, opset, static, batch, data, data_root, exist_ok, precision, calib,
                          min_agreement, fmt)  # fmt: skip
    typer.echo(
        f"exported {r['onnx']} ({precision}, opset {r['opset']}, {'dynamic' if r['dynamic'] else 'static'} shapes); "
        f"onnxruntime vs PyTorch on {r['inputs']} inputs: max |logit diff| {r['max_abs_diff']:.2e}, "
        f"argmax agreement {100 * r['argmax_agreement']:.3f}%"
    )
    if precision != "fp32":
        typer.echo(
            f"{precision} vs fp32 on {r['vs_fp32_inputs']} real images: max |logit diff| "
            f"{r['vs_fp32_max_abs_diff']:.2e}, argmax agreement {100 * r['vs_fp32_argmax_agreement']:.3f}%"
        )
    if fmt == "openvino":
        typer.echo(
            f"OpenVINO vs onnxruntime on {r['openvino_inputs']} inputs: max |logit diff| "
            f"{r['openvino_max_abs_diff']:.2e}, argmax agreement {100 * r['openvino_argmax_agreement']:.3f}%"
        )
