"""The rich consoles every command prints through (results on stdout, warnings and errors on stderr)."""

import sys

from rich.console import Console

# Off a terminal (logs, CI, pipes) rich would wrap tables at 80 columns; give them room instead.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
