"""Run directories and atomic writes: nothing the user had is ever overwritten by accident."""

from __future__ import annotations

import errno
import functools
import json
import os
import tempfile
import unicodedata
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
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


@functools.lru_cache(maxsize=256)
def _folds_case(directory: str) -> bool:
    """Whether the file system holding `directory` ignores case (macOS and Windows by default): the nearest
    existing ancestor with a letter in its name is found again under its name in the other case."""
    for p in [Path(directory), *Path(directory).parents]:
        flipped = p.with_name(p.name.swapcase()) if p.name else p
        if flipped.name != p.name and p.exists():
            try:
                return os.path.samefile(p, flipped)
            except OSError:
                return False
    return False


def path_key(path: Path) -> str:
    """The identity of a path as the file system sees it: resolved (links, `..`), and case-folded where the
    file system ignores case. Two paths with one key are one file."""
    resolved = Path(path).resolve()
    text = str(resolved)
    return unicodedata.normalize("NFC", text).casefold() if _folds_case(str(resolved.parent)) else text


def name_key(name: str) -> str:
    """An output name's identity on any file system (case-folded, Unicode-normalised): names are reserved by
    it so that a run's outputs stay apart when copied to a case-insensitive disk."""
    return unicodedata.normalize("NFC", name).casefold()


def companions(path: Path) -> list[Path]:
    """The files written with `path` as one output: an OpenVINO .xml's .bin, an ONNX file's external data."""
    path = Path(path)
    if path.suffix.lower() == ".xml":
        return [path.with_suffix(".bin")]
    if path.suffix.lower() == ".onnx":
        return [path.with_name(path.name + ".data")]
    return []


def _inside(key: str, root: str) -> bool:
    return key == root or key.startswith(root.rstrip(os.sep) + os.sep)


@dataclass
class WriteGuard:
    """The never-overwrite rule of one command, checked for each file it writes (`claim`): a path that exists
    and was not written by this run is refused unless --exist-ok, and even then never one of the command's
    inputs (a checkpoint being exported, a --config file, predict's sources). Inside an input folder (a data
    root, a folder predicted on) it writes only into a run directory it made new (or resumes)."""

    exist_ok: bool = False
    written: set[str] = field(default_factory=set)  # keys of the paths this run wrote or reserved
    inputs: dict[str, Path] = field(default_factory=dict)  # key -> input file
    input_ids: dict[tuple[int, int], Path] = field(default_factory=dict)  # (device, inode) -> input file: hard links
    roots: dict[str, Path] = field(default_factory=dict)  # key -> input folder
    owned: set[str] = field(default_factory=set)  # run directories this run made new, or resumes
    expected: list[str] = field(default_factory=list)  # files the next run directory will hold

    def protect(self, *paths: Path | str | None) -> None:
        """Note the command's inputs: files are never written, folders only in run directories made new."""
        for p in paths:
            if p is None or not os.path.lexists(p):
                continue
            if Path(p).is_dir():
                self.roots[path_key(Path(p))] = Path(p)
            else:
                self.inputs[path_key(Path(p))] = Path(p)
                if Path(p).exists():
                    st = os.stat(p)
                    self.input_ids[(st.st_dev, st.st_ino)] = Path(p)

    def own(self, run_dir: Path) -> None:
        """A run directory this run made (or resumes): its files are this run's to rewrite."""
        self.owned.add(path_key(run_dir))

    def refusal(self, path: Path, what: str = "") -> str | None:
        """Why `path` may not be written by this run (`what`: how it belongs to the output), or None."""
        key, shown = path_key(path), f"{path}{what}"
        if key in self.written:
            return None
        exists = os.path.lexists(path)
        inp = self.inputs.get(key)
        if inp is None and exists and Path(path).exists():  # the same file under another name (a hard link)
            st = os.stat(path)
            inp = self.input_ids.get((st.st_dev, st.st_ino))
        if inp is not None:
            return f"{shown} is an input of this command ({inp}); write to another path"
        if any(_inside(key, d) for d in self.owned):
            return None
        root = next((r for k, r in self.roots.items() if _inside(key, k)), None)
        if root is not None:
            return f"{shown} is inside the input folder {root}; write into a new folder (--out NEW), not over inputs"
        if exists and not self.exist_ok and not _is_cache(path):
            return f"{shown} exists and this run did not write it; choose another --out, or pass --exist-ok"
        return None

    def claim(self, *paths: Path) -> None:
        """Reserve `paths` (each with its companion files) for this run, all or none: a refusal names the
        first path refused and leaves nothing reserved, before anything is written."""
        wanted = [(Path(p), "") for p in paths]
        wanted += [(c, f" (written with {Path(p).name})") for p in paths for c in companions(p)]
        for p, what in wanted:
            if (why := self.refusal(p, what)) is not None:
                raise DistilkitError(why)
        self.written.update(path_key(p) for p, _ in wanted)


# the guard of the command being run, set by the CLI wrapper; None outside a command (the Python API)
write_guard: ContextVar[WriteGuard | None] = ContextVar("write_guard", default=None)


def start_guard(options: dict) -> Token:
    """The CLI wrapper's first step: a guard for this command, its --exist-ok, its --config and data root
    noted as inputs (the data root as data.registry.data_root finds it, without importing the data sets: this
    runs before every command, `datasets` and `--help`-fast ones too). Reset the returned token when it ends."""
    root = options.get("data_root") or os.environ.get("DISTILKIT_DATA")
    guard = WriteGuard(exist_ok=bool(options.get("exist_ok")))
    guard.protect(options.get("config"), Path(root).expanduser() if root else None)
    return write_guard.set(guard)


def claim(*paths: Path) -> None:
    """Check `paths` against the running command's guard and reserve them (nothing outside a command)."""
    guard = write_guard.get()
    if guard is not None:
        guard.claim(*paths)


def protect(*paths: Path | str | None) -> None:
    """Note inputs of the running command (see WriteGuard.protect)."""
    guard = write_guard.get()
    if guard is not None:
        guard.protect(*paths)


def own(run_dir: Path) -> None:
    guard = write_guard.get()
    if guard is not None:
        guard.own(run_dir)


def expect(*names: str) -> None:
    """Files (relative paths) the next run directory made will hold: claimed as soon as it is made, before its
    config.yaml, so a refusal leaves nothing written."""
    guard = write_guard.get()
    if guard is not None:
        guard.expected = list(names)


def _is_cache(path: Path) -> bool:
    """distilkit's own cache (the scan results) is rewritten by every run; it holds nothing of the user's."""
    from distilkit.data.scan import cache_dir

    return _inside(path_key(path), path_key(cache_dir()))


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
    """Note the new run directory with the topmost folder made for it (`note`: it held nothing before, so it is
    this run's own), claim the files the command said it will write there, then write its config.yaml."""
    noted, guard = made_run_dirs.get(), write_guard.get()
    if noted is not None and note:
        noted.append((run_dir, top))
    if guard is not None:
        if note:
            guard.own(run_dir)
        expected, guard.expected = guard.expected, []
        guard.claim(*(run_dir / name for name in expected))
    write_invocation(run_dir)
    return run_dir


# what a run writes before it has produced anything: its options, its experiment record, its live-log folder
SCAFFOLD = {"config.yaml", "args.json", "tensorboard"}


def discard_unused_run_dirs() -> None:
    """After a failed or stopped command: take back each run directory it made that holds nothing but its
    scaffold (SCAFFOLD: a training stopped before its first save has nothing to resume and nothing to keep), and
    the folders made on the way to it, so a retry with the same --out is not refused. A folder the user already
    had (an empty --out) stays, emptied again."""
    import shutil

    for run_dir, top in reversed(made_run_dirs.get() or []):
        try:
            entries = list(run_dir.iterdir())
            if any(p.name not in SCAFFOLD and not (p.is_dir() and not any(p.iterdir())) for p in entries):
                continue  # the run wrote something: it is the user's to keep or --resume
            for p in entries:
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
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
    """Call `write(tmp)` on a temp file beside `path`, then rename it over `path` in one step: every file
    distilkit writes comes through here (or `claim`s its path first), so the running command's WriteGuard
    sees each one.

    A process killed mid-write leaves the previous file intact. The file gets the permissions the umask
    gives a new file (mkstemp's are 0600: a teammate or a serving process could not read a checkpoint). A
    full disk is one clear error that says what was kept.
    """
    path = Path(path)
    claim(path)  # the never-overwrite check of the command being run (WriteGuard)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DistilkitError(disk_full_message(path)) from None
        named = Path(str(e.filename)) if isinstance(e, OSError) and e.filename is not None else None
        if isinstance(e, OSError) and (
            named is None or named == path.parent or named.name.startswith(f".{path.name}.")
        ):
            e.filename = str(path)  # the user asked for `path`: the temp file's name means nothing to them
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
