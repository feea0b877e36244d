"""The `distilkit` command line: parses options and dispatches to the core; no logic of its own."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.core

from distilkit import __version__
from distilkit.cli import compare, demo, deploy, distill, evaluate, info, train
from distilkit.utils import boundary


class OneLineGroup(typer.core.TyperGroup):
    """The top-level command group, whose usage errors (an unknown option, `--batch abc`, a missing argument)
    are one `error:` line like every other error, instead of click's framed usage block."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except Exception as e:
            if not (hasattr(e, "format_message") and hasattr(e, "exit_code")):  # not click's own: the boundary's
                raise
            ctx = getattr(e, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            boundary.say(f"error: {e.format_message()}{hint}")
            sys.exit(e.exit_code)
        except RuntimeError as e:  # click's Abort: end of input at a prompt
            if type(e).__name__ != "Abort":
                raise
            boundary.say("interrupted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)  # an int is an Exit's code; a command returns None


app = typer.Typer(
    cls=OneLineGroup,
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
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, print the traceback too (also: DISTILKIT_DEBUG=1).")
    ] = False,
) -> None:
    """distilkit: train teachers, distil students, evaluate, predict, benchmark and export."""
    boundary.debug = debug


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
    """The console script: the one error boundary around the whole app, so exceptions raised outside a
    command (Click callbacks, imports) end as one line too; SIGTERM ends like Ctrl-C."""
    from distilkit.utils.limits import check_thread_env

    if line := check_thread_env():
        boundary.say(f"error: {line}")
        sys.exit(2)
    boundary.install_signals()
    if "--debug" in sys.argv[2:]:  # accepted anywhere on the line: it belongs to the root callback
        sys.argv = [sys.argv[0], "--debug", *(a for a in sys.argv[1:] if a != "--debug")]
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # raised outside every command's own boundary
        code = boundary.fail(e)
    if code not in (boundary.EXIT_PIPE,):
        try:
            boundary.flush_stdout()
        except BaseException as e:
            code = boundary.fail(e)
    sys.exit(code)
