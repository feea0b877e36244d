"""Rich progress bars with rate and ETA, shared by training, evaluation and prediction."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from distilkit.utils.console import err_console


class RateColumn(ProgressColumn):
    """Items per second, with the task's own unit (it, img, frame)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        return Text(f"{speed:.2f} {unit}/s" if speed else f"-- {unit}/s", style="cyan")


def progress_bar(enabled: bool = True, *extra: ProgressColumn) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold", markup=False),  # a description may name a file
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        *extra,
        console=err_console,
        disable=not enabled,
        transient=False,
    )
