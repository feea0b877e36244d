"""`distilkit evaluate`: metrics of a checkpoint on a data split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from distilkit.cli.options import (
    Amp,
    Batch,
    DataRoot,
    Device,
    ExistOk,
    ImgSz,
    Name,
    Out,
    SkipBad,
    Workers,
    user_errors,
)


@user_errors
def evaluate(
    weights: Annotated[
        Path | None,
        typer.Argument(help="A .safetensors checkpoint or an exported .onnx (fp32, fp16, INT8; default: newest best)."),
    ] = None,
    data: Annotated[
        str | None, typer.Option("--data", help="Data set (default: the checkpoint's validation set).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split to evaluate.")] = "val",
    mode: Annotated[str, typer.Option("--mode", help="whole (resized image) or slide (sliding window).")] = "whole",
    limit: Annotated[int | None, typer.Option("--limit", help="Evaluate the first N images only.")] = None,
    imgsz: ImgSz = None,
    batch: Batch = 4,
    amp: Amp = False,
    device: Device = "auto",
    workers: Workers = 2,
    skip_bad: SkipBad = False,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Per-class IoU, mIoU, pixel and mean class accuracy, images/s: a rich table plus JSON, CSV and a plot."""
    from distilkit.data import build_dataset
    from distilkit.engine.checkpoint import info_from_meta, resolve_weights
    from distilkit.engine.predictor import load_backend
    from distilkit.engine.report import report_eval
    from distilkit.engine.validator import evaluate as run_eval
    from distilkit.utils.device import select_device
    from distilkit.utils.files import increment_run_dir, write_json
    from distilkit.utils.limits import check_fits

    dev = select_device(device)
    weights = resolve_weights(weights)
    model, meta = load_backend(weights, dev)  # a checkpoint, or the exported file itself
    data = data or meta.get("val_data") or meta["dataset"]
    dataset = build_dataset(data, split, data_root, skip_bad)
    size = tuple(imgsz) if imgsz else tuple(meta["imgsz"])
    check_fits(batch, *size, training=False)  # before minutes of evaluation end in an out-of-memory error
    results = run_eval(model, dataset, info_from_meta(meta), size, dev, batch, workers, mode, amp, limit=limit)
    run_dir = increment_run_dir("evaluate", name, out, exist_ok)
    results.update(weights=str(weights), data=data, split=split, mode=mode, imgsz=list(size))
    write_json(run_dir / "confusion_matrix.json", results["confusion_matrix"])  # every result before printing
    report_eval(results, run_dir, f"{meta['arch']['name']} on {data} ({split}, {mode})")
    typer.echo(f"results: {run_dir / 'results.json'}")
