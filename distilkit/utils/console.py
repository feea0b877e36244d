"""The rich consoles every command prints through (results on stdout, warnings and errors on stderr)."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
