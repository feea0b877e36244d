"""The one error boundary every command ends in: any exception becomes one line on stderr and an exit code.

`user_errors` (around each command) and `cli.main` (around the whole app, so Click callbacks such as
--config's are covered too) both call `fail`. Classification is by the exception's type, its MRO and the
module each class comes from, never by command, and imports no library just to classify (torch,
onnxruntime, openvino and av stay unimported when they were not used). Anything not recognised is an
internal error: one line naming a crash log that holds the traceback, argv and versions.
"""

from __future__ import annotations

import contextlib
import errno
import os
import platform
import re
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from distilkit.errors import DistilkitError, first_line, one_line

# What to say for an exception raised by a library, by the top-level package its class (or a base) comes from.
LIBRARIES: dict[str, tuple[str, str]] = {
    "onnxruntime": ("onnxruntime", "is the .onnx file whole and made by `distilkit export-onnx`?"),
    "openvino": ("OpenVINO", "is the .xml beside its .bin, both whole and from `distilkit export-onnx`?"),
    "av": ("PyAV (video)", "is the video whole and in a format ffmpeg reads?"),
    "PIL": ("Pillow (image)", "is the image whole, and of a sane size?"),
    "yaml": ("YAML", "check the file's syntax"),
    "rich": ("rich (printing)", "the results files are written before anything is printed"),
    "safetensors": ("safetensors", "is the checkpoint whole?"),
}
OOM_TEXT = ("can't allocate", "DefaultCPUAllocator", "out of memory", "not enough memory")
EXIT_ERROR, EXIT_PIPE, EXIT_CTRL_C, EXIT_SIGTERM = 1, 141, 130, 143

debug = False  # --debug (the root callback) or DISTILKIT_DEBUG=1: print the traceback as well


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so every Ctrl-C path (run directories taken back, partial
    outputs listed) runs for it too."""


_held = 0  # depth of `uninterrupted` blocks the process is in
_pending: KeyboardInterrupt | None = None  # a Ctrl-C or SIGTERM that arrived inside one


def on_signal(signum: int, frame: object) -> None:
    global _pending
    stop = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
    if _held:
        _pending = stop  # raised when the block ends
        return
    raise stop


def install_signals() -> None:
    """Ctrl-C and SIGTERM end the same way (130, 143), and wait for an `uninterrupted` block to end."""
    with contextlib.suppress(ValueError):  # not the main thread (an embedding application): leave its handlers
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)


@contextlib.contextmanager
def uninterrupted():
    """Files that only make sense together (a checkpoint and its training state) are written all or none: a
    Ctrl-C or SIGTERM arriving inside is raised when the block ends. Kill -9 still lands anywhere; resuming
    copes with that (the state is written last)."""
    global _held, _pending
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held and _pending is not None:
            stop, _pending = _pending, None
            raise stop


def is_cli_flow(e: BaseException) -> bool:
    """Typer's and Click's own exits, aborts and usage errors: theirs to print, not errors of a command."""
    return any(m.split(".")[0] in ("typer", "click") for m in _modules(e))


def debugging() -> bool:
    return debug or os.environ.get("DISTILKIT_DEBUG", "").lower() in ("1", "true", "yes", "on")


def _modules(e: BaseException) -> list[str]:
    return [c.__module__ or "" for c in type(e).__mro__]


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50}


def _asked(text: str) -> int | None:
    """The bytes an allocator said it was asked for (torch CPU: bytes; CUDA and numpy: with a unit)."""
    if m := re.search(r"tried to allocate (\d+) bytes", text, re.I):
        return int(m.group(1))
    if m := re.search(r"allocate ([\d.]+) ?([KMGTP])i?B", text, re.I):
        return int(float(m.group(1)) * UNITS[m.group(2).upper()])
    return None


def smaller(kwargs: dict | None, asked: int | None = None) -> str:
    """A size to try, from the command's own options and, when the allocator said how much it was asked for,
    the memory available: a batch scaled to fit (at most half), else an image size scaled so, else what to do
    where the command has neither option (predict's images are the inputs themselves)."""
    from distilkit.utils.limits import available_bytes

    kwargs = kwargs or {}
    batch, imgsz = kwargs.get("batch"), kwargs.get("imgsz")
    fit = min(0.5, 0.8 * available_bytes() / asked) if asked else 0.5  # the share of the request that fits
    if isinstance(batch, int) and batch > 1:
        return f"try --batch {max(1, int(batch * fit))}"
    if imgsz and all(isinstance(v, int) and v > 1 for v in imgsz):
        side = fit**0.5
        return f"try --imgsz {max(32, int(imgsz[0] * side) // 32 * 32)} {max(32, int(imgsz[1] * side) // 32 * 32)}"
    if "imgsz" in kwargs:
        return "try a smaller --imgsz"
    return "the input is too large for this machine's memory: use smaller images of a usual aspect ratio"


def is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return True
    return isinstance(e, RuntimeError) and any(t in str(e) for t in OOM_TEXT)


def _library(e: BaseException) -> str | None:
    """The library that raised `e`: the package of its class or a base, or OpenVINO's C++ text in a plain
    RuntimeError."""
    for module in _modules(e):
        if (top := module.split(".")[0]) in LIBRARIES:
            return top
    if "Exception from src/" in str(e):
        return "openvino"
    return None


def _printing(e: BaseException) -> bool:
    """Whether `e` was raised while printing (rich's console or click's echo): a full disk behind stdout."""
    tb = e.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("rich.") or module.endswith("click.utils"):
            return True
        tb = tb.tb_next
    return False


def _os_error(e: OSError) -> str:
    where = e.filename if e.filename is not None else "standard output" if _printing(e) else "a file"
    reason = e.strerror or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full (or over quota) writing {where}: free some space and rerun"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {where}: {reason}; choose another --out or fix its permissions"
    if e.errno == errno.ENOENT:
        return f"no such file or folder: {where}"
    return f"{reason}: {where}"


def classify(e: BaseException, kwargs: dict | None = None) -> tuple[str | None, int]:
    """(the line to print or None for none, the exit code) for an exception that reached the top. The table:
    DistilkitError, Ctrl-C/SIGTERM, a closed stdout, out of memory, recursion, OS errors, library errors;
    anything else is internal (the caller writes the crash log)."""
    if isinstance(e, DistilkitError):
        return f"error: {one_line(e)}", EXIT_ERROR
    if isinstance(e, Terminated):
        return "interrupted (SIGTERM)", EXIT_SIGTERM
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", EXIT_CTRL_C
    if isinstance(e, BrokenPipeError) or (isinstance(e, OSError) and e.errno == errno.EPIPE):
        return None, EXIT_PIPE  # `distilkit ... | head`: the reader has what it wanted
    if is_oom(e):
        asked = _asked(str(e))
        size = f" (an allocation of {_gb(asked)} failed)" if asked else ""
        return f"error: out of memory{size}; {smaller(kwargs, asked)}", EXIT_ERROR
    if isinstance(e, RecursionError):
        return "error: input nested too deeply to read (recursion limit); simplify it", EXIT_ERROR
    if (lib := _library(e)) is not None:
        name, hint = LIBRARIES[lib]
        return f"error: {name}: {first_line(e)} ({hint})", EXIT_ERROR
    if isinstance(e, OSError):
        return f"error: {_os_error(e)}", EXIT_ERROR
    return None, -1


def crash_dir() -> Path:
    if where := os.environ.get("DISTILKIT_CRASH_DIR"):
        return Path(where)
    cache = os.environ.get("DISTILKIT_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(cache) / ("crash" if os.environ.get("DISTILKIT_CACHE") else "distilkit/crash")


def write_crash_log(e: BaseException) -> Path | None:
    """The traceback, argv and versions, written atomically; None when it could not be written."""
    from distilkit import __version__

    torch = sys.modules.get("torch")  # only if the command imported it: never import it to report a crash
    lines = [
        f"distilkit {__version__}, python {sys.version.split()[0]}, {platform.platform()}",
        f"torch {getattr(torch, '__version__', '?')}" if torch else "torch not imported",
        f"argv: {sys.argv!r}",
        f"time: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        "",
        *traceback.format_exception(e),
    ]
    try:
        folder = crash_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".crash.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(line.rstrip("\n") for line in lines) + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
    except OSError:
        return None


def quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush into a closed pipe says nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (a test's capture)
        pass


def flush_stdout() -> None:
    """Flush stdout here, inside the boundary, so a full disk or closed pipe behind it is reported."""
    try:
        sys.stdout.flush()
    except OSError as e:
        if e.filename is None:
            e.filename = "standard output"
        raise


def fail(e: BaseException, kwargs: dict | None = None) -> int:
    """Print the one line for `e` (the traceback too under --debug) and return the exit code."""
    line, code = classify(e, kwargs)
    if code == EXIT_PIPE:
        quiet_stdout()
        return code
    if debugging() and not isinstance(e, KeyboardInterrupt):
        traceback.print_exception(e, file=sys.stderr)
    if code < 0:
        log = write_crash_log(e)
        where = f"traceback in {log}" if log else "no crash log could be written"
        how = "" if debugging() else "; rerun with --debug to print it"
        line, code = f"error: internal error: {type(e).__name__}: {first_line(e)} ({where}{how})", EXIT_ERROR
    say(line)
    return code


def say(line: str) -> None:
    """The one line on stderr, in red: every error distilkit reports is printed here."""
    try:
        import typer

        typer.secho(line, fg="red", err=True)
    except OSError:  # stderr gone too: the exit code is all that is left
        pass
