"""Run directories and atomic writes: nothing the user had is ever overwritten by accident."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from distilkit.errors import DistilkitError


def increment_run_dir(command: str, name: str = "exp", out: Path | None = None, exist_ok: bool = False) -> Path:
    """Return a new run directory: `out` as given, else runs/<command>/<name>, <name>2, ... (Ultralytics habit)."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise DistilkitError(f"--out {out} exists and is not a directory")
        if out.exists() and any(out.iterdir()) and not exist_ok:
            raise DistilkitError(f"--out {out} already holds files; choose another path or pass --exist-ok")
        _mkdir(out)
        return out
    base = Path("runs") / command
    path = base / name
    if exist_ok:
        _mkdir(path)
        return path
    n = 2
    while path.exists():
        path = base / f"{name}{n}"
        n += 1
    _mkdir(path)
    return path


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DistilkitError(f"cannot create run directory {path}: {e.strerror}") from None


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, then rename it over `path` in one step.

    A process killed mid-write leaves the previous file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def newest(pattern: str, root: Path = Path("runs")) -> Path | None:
    """The most recently modified file under `root` matching `pattern` (e.g. the newest best checkpoint)."""
    files = [p for p in Path(root).glob(pattern) if p.is_file()]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None
