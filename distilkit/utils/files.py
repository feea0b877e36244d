"""Run directories and atomic writes: nothing the user had is ever overwritten by accident."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from distilkit.errors import DistilkitError

# (command path, option values) of the command being run, set by the CLI: the first run directory it makes
# gets config.yaml, so `--config that/config.yaml` reruns the same experiment
invocation: ContextVar[tuple[str, dict] | None] = ContextVar("invocation", default=None)
command_path: ContextVar[str] = ContextVar("command_path", default="distilkit")
# (run directory, the topmost folder made for it or None) for each run directory the command being run made:
# a command that fails before its run writes anything takes them back (discard_unused_run_dirs), so a retry
# with the same --out is not refused for holding files
made_run_dirs: ContextVar[list[tuple[Path, Path | None]] | None] = ContextVar("made_run_dirs", default=None)


def write_invocation(run_dir: Path) -> None:
    """config.yaml in a new run directory: every option value the command used (defaults included)."""
    import yaml

    current = invocation.get()
    if current is None:
        return
    invocation.set(None)  # once: a command's inner run directories (compare's arms) are its own
    command, values = current
    head = f"# {command}: every option this run used; `{command} --config config.yaml` reruns it\n"
    atomic_write(run_dir / "config.yaml", lambda p: p.write_text(head + yaml.safe_dump(values, sort_keys=False)))


def increment_run_dir(command: str, name: str = "exp", out: Path | None = None, exist_ok: bool = False) -> Path:
    """Return a new run directory: `out` as given, else runs/<command>/<name>, <name>2, ... (Ultralytics habit)."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise DistilkitError(f"--out {out} exists and is not a directory")
        if _holds_files(out) and not exist_ok:
            raise DistilkitError(f"--out {out} already holds files; choose another path or pass --exist-ok")
        return _make(out)
    base = Path("runs") / command
    path = base / name
    if exist_ok:
        return _make(path)
    top = _first_missing(base)
    _mkdir(base)
    n = 2
    while not _mkdir(path, claim=True):  # mkdir is atomic: two processes never get the same directory
        path = base / f"{name}{n}"
        n += 1
    return _started(path, top or path)


def _holds_files(path: Path) -> bool:
    return path.exists() and any(path.iterdir())


def _first_missing(path: Path) -> Path | None:
    """The topmost folder on the way to `path` that does not exist yet; None when `path` exists."""
    missing = None
    for p in [path, *path.parents]:
        if p.exists():
            break
        missing = p
    return missing


def _make(path: Path) -> Path:
    """Make `path`, which may exist (an empty --out, or --exist-ok). A folder that held files before is the
    user's: it is never noted for taking back."""
    top, held = _first_missing(path), _holds_files(path)
    _mkdir(path)
    return _started(path, top, note=not held)


def _started(run_dir: Path, top: Path | None, note: bool = True) -> Path:
    """Write the new run directory's config.yaml, and note it with the topmost folder made for it."""
    write_invocation(run_dir)
    noted = made_run_dirs.get()
    if noted is not None and note:
        noted.append((run_dir, top))
    return run_dir


def discard_unused_run_dirs() -> None:
    """After a failed command: take back each run directory it made that holds only config.yaml, and the
    folders made on the way to it. A folder the user already had (an empty --out) stays, emptied again."""
    for run_dir, top in reversed(made_run_dirs.get() or []):
        try:
            if {p.name for p in run_dir.iterdir()} - {"config.yaml"}:
                continue  # the run wrote something: it is the user's to keep or --resume
            (run_dir / "config.yaml").unlink(missing_ok=True)
            if top is None:
                continue
            for p in [run_dir, *run_dir.parents]:
                if any(p.iterdir()):
                    break
                p.rmdir()
                if p == top:
                    break
        except OSError:
            pass  # an empty folder left behind is harmless; failing the error report over it is not


def _mkdir(path: Path, claim: bool = False) -> bool:
    """Make `path` (and its parents). With `claim`, False when it already exists (someone else's)."""
    try:
        path.mkdir(parents=True, exist_ok=not claim)
    except FileExistsError:
        if not path.is_dir():
            raise DistilkitError(f"cannot create run directory {path}: a file is in the way") from None
        return False
    except OSError as e:
        raise DistilkitError(f"cannot create run directory {path}: {e.strerror}") from None
    return True


def umask() -> int:
    """The process's umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` on a temp file beside `path`, then rename it over `path` in one step.

    A process killed mid-write leaves the previous file intact. The file gets the permissions the umask
    gives a new file (mkstemp's are 0600: a teammate or a serving process could not read a checkpoint). A
    full disk is one clear error that says what was kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DistilkitError(disk_full_message(path)) from None
        raise


def disk_full_message(path: Path) -> str:
    run = next((p for p in path.parents if (p / "args.json").is_file()), None)
    kept = "its previous version is intact" if path.exists() else "nothing was written in its place"
    resume = f"; free space, then `--resume {run}` continues from the last saved state" if run else "; free space"
    return f"no space left on the device writing {path} ({kept}){resume}"


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def newest(pattern: str, root: Path = Path("runs")) -> Path | None:
    """The most recently modified file under `root` matching `pattern` (e.g. the newest best checkpoint)."""
    files = [p for p in Path(root).glob(pattern) if p.is_file()]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None
