"""The `distilkit` command line: parses options and dispatches to the core; no logic of its own."""

from __future__ import annotations

from typing import Annotated

import typer

from distilkit import __version__
from distilkit.cli import compare, demo, deploy, distill, evaluate, info, train

app = typer.Typer(
    name="distilkit",
    help="Distil large semantic-segmentation models into small, fast ones (also across a domain shift).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distilkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """distilkit: train teachers, distil students, evaluate, predict, benchmark and export."""


app.command("demo")(demo.demo)
app.command("train-teacher")(train.train_teacher)
app.add_typer(distill.app, name="distill")
app.command("compare")(compare.compare)
app.command("evaluate")(evaluate.evaluate)
app.command("predict")(deploy.predict)
app.command("fps")(deploy.fps)
app.command("export-onnx")(deploy.export_onnx)
app.command("models")(info.models)
app.command("datasets")(info.datasets)


def main() -> None:
    app()
