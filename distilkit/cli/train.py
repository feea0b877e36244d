"""`distilkit train-teacher`: supervised training of a (teacher) model on a labelled set."""

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
    Grey,
    Hue,
    ImgSz,
    Jitter,
    Name,
    Out,
    Pretrained,
    Seed,
    SkipBad,
    TrainLimit,
    ValLimit,
    Workers,
    augment,
    user_errors,
)

RESUME_TAKES = {"resume", "device", "threads"}  # --resume continues the recorded experiment; these only say where


def resume_alone() -> None:
    """Refuse options given beside --resume (on the command line or through --config): the run continues as its
    args.json records it, so they would be dropped without a word. Where each value came from is the click
    context's parameter source (typer >= 0.20 runs its own copy of click, whose context that is)."""
    from distilkit.errors import DistilkitError

    try:
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context
    ctx = get_current_context(silent=True)
    if ctx is None:  # called from Python, not from the command line: nothing was given beside resume
        return
    given = [p for p in ctx.command.params if p.name not in RESUME_TAKES and p.name != "config"]
    named = [p.opts[0] for p in given if getattr(ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT"]
    if named:
        raise DistilkitError(f"--resume continues the run as its args.json records it; drop {', '.join(named)} "
                             "(or start a new run without --resume)")  # fmt: skip


@user_errors
def train_teacher(
    data: Annotated[
        str, typer.Option("--data", help="Labelled training set (list: `distilkit datasets`).")
    ] = "synth-gta",
    model: Annotated[
        str, typer.Option("--model", help="Model name (list: `distilkit models`), e.g. unet-efficientnet-lite2.")
    ] = "segformer-b0",
    val_data: Annotated[
        str | None, typer.Option("--val-data", help="Validation set (default: --data's val split).")
    ] = None,
    val_split: Annotated[str, typer.Option("--val-split")] = "val",
    iters: Annotated[int, typer.Option("--iters", help="Training iterations.")] = 1000,
    lr: Annotated[float, typer.Option("--lr", help="Base learning rate.")] = 6e-4,
    head_lr_mult: Annotated[float, typer.Option("--head-lr-mult", help="Decoder/head lr multiplier.")] = 1.0,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adamw, adam or sgd.")] = "adamw",
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.01,
    schedule: Annotated[
        str, typer.Option("--schedule", help="poly, cosine, step or constant (after warm-up).")
    ] = "poly",
    warmup: Annotated[
        int, typer.Option("--warmup", help="Linear warm-up iterations (the engine caps it at half the run).")
    ] = 100,
    grad_clip: Annotated[float | None, typer.Option("--grad-clip", help="Max gradient norm.")] = None,
    val_every: Annotated[int, typer.Option("--val-every", help="Evaluate and save every N iterations.")] = 250,
    val_limit: ValLimit = None,
    train_limit: TrainLimit = None,
    pretrained: Pretrained = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="A distilkit checkpoint to fine-tune (its architecture replaces --model)."),
    ] = None,
    style: Annotated[
        str | None, typer.Option("--style", help="fda: render training images in --style-target's look.")
    ] = None,
    style_target: Annotated[
        str | None, typer.Option("--style-target", help="Data set whose images give the style.")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option("--resume", help="Continue a run from its last saved state (run dir).")
    ] = None,
    jitter: Jitter = 0.2,
    hue: Hue = 0.0,
    grey: Grey = 0.0,
    imgsz: ImgSz = None,
    batch: Batch = 8,
    amp: Amp = False,
    seed: Seed = 0,
    device: Device = "auto",
    workers: Workers = 2,
    skip_bad: SkipBad = False,
    data_root: DataRoot = None,
    out: Out = None,
    name: Name = "exp",
    exist_ok: ExistOk = False,
) -> None:
    """Train a segmentation model on a labelled data set; prints the final evaluation table."""
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.distributed import is_main
    from distilkit.engine.report import report_eval
    from distilkit.engine.trainer import run_training

    cfg = None
    if resume is not None:
        resume_alone()
    else:
        cfg = TrainConfig(
            command="train-teacher", method="supervised", data=data, val_data=val_data, val_split=val_split,
            data_root=str(data_root) if data_root else None, model=model, pretrained=pretrained,
            imgsz=tuple(imgsz) if imgsz else None, batch=batch, iters=iters, optimizer=optimizer, lr=lr,
            head_lr_mult=head_lr_mult, weight_decay=weight_decay, schedule=schedule, warmup=warmup,
            grad_clip=grad_clip, amp=amp, val_every=val_every, val_limit=val_limit, train_limit=train_limit, seed=seed,
            workers=workers, skip_bad=skip_bad, device=device,
            method_args={"style": style, "style_target": style_target, "weights": str(weights) if weights else None,
                         "aug": augment(jitter, hue, grey)},
        )  # fmt: skip
    results, run_dir, method = run_training(cfg, name, out, exist_ok, resume, device, "train-teacher")
    if not is_main():  # under torchrun, rank 0 reports
        return
    val = method.val_dataset()
    report_eval(results, run_dir, f"{method.student().arch['name']} on {val.info.name} ({val.split}), final")
    typer.echo(
        f"weights: {run_dir / 'weights' / 'best.safetensors'} (best), {run_dir / 'weights' / 'last.safetensors'}"
    )
