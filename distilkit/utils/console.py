"""The rich consoles every command prints through (results on stdout, warnings and errors on stderr).

Both read no markup and no emoji codes: what they print is mostly data (class names, paths, data set names),
and a class named `[/]` or `[bold]` crashed or restyled every table it was in. Markup off here covers every
`print`, every Table cell, title and caption at once; styles are given as `Text`/`style=` (`styled`).
"""

import errno
import sys

from rich.console import Console
from rich.text import Text


class DataConsole(Console):
    """A console for data: no markup, no emoji codes; a closed pipe is raised to the error boundary (which
    takes back unused run directories and exits quietly) instead of rich's own SystemExit(1)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(markup=False, emoji=False, **kwargs)

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


# Off a terminal (logs, CI, pipes) rich would wrap tables at 80 columns; give them room instead.
console = DataConsole(width=None if sys.stdout.isatty() else 160)
err_console = DataConsole(stderr=True, width=None if sys.stderr.isatty() else 160)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text from plain strings and (string, style) pairs; no part is read as markup."""
    return Text.assemble(*parts)


def warn(message: str) -> None:
    err_console.print(styled(("warning:", "yellow"), " ", message), highlight=False, soft_wrap=True)
