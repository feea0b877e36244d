"""`distilkit distill {duda,sakd,hdl,sdd}`: the distillation methods, one subcommand each."""

from __future__ import annotations

import typer

from distilkit.cli.options import not_yet

app = typer.Typer(help="Distil a teacher into a student with one of four methods.", no_args_is_help=True)


@app.command("duda")
def duda() -> None:
    """Distilled unsupervised domain adaptation (source labelled, target unlabelled)."""
    not_yet("distill duda", 4)


@app.command("sakd")
def sakd() -> None:
    """Sample-level adaptive KD with DPP sample selection, over any base distillation loss."""
    not_yet("distill sakd", 5)


@app.command("hdl")
def hdl() -> None:
    """UNet teacher -> FastLiteSSNet student with the hybrid distillation loss."""
    not_yet("distill hdl", 6)


@app.command("sdd")
def sdd() -> None:
    """Scale decoupled distillation of segmentation logits."""
    not_yet("distill sdd", 7)
