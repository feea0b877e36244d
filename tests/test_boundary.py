"""The one error boundary (distilkit/utils/boundary.py): every exception that reaches the top is one line on
stderr and a non-zero exit, never a traceback; limits checked before work (--config, threads, sizes); data
printed without markup, after the results are saved (docs/reliability.md, "One error boundary")."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.errors import DistilkitError
from distilkit.utils import boundary
from distilkit.utils.limits import check_fits

runner = CliRunner()
PY = [sys.executable, "-m", "distilkit"]


def one_line(result, words: str = "", start: str = "error:") -> str:
    """Exactly one `error:` line, the last one on stderr, holding `words`; a non-zero exit; no traceback."""
    err = result.stderr if hasattr(result, "exit_code") else result.stderr
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    out = result.output if hasattr(result, "exit_code") else result.stdout
    assert code != 0, (out, err)
    assert "Traceback" not in err and "Traceback" not in (out or ""), err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "interrupted"))]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith(start), err
    assert words in errors[0], err
    return errors[0]


def lib_error(module: str, name: str, base: type = Exception) -> type:
    """A stand-in for a library's exception class: only its module and name matter to the classifier."""
    return type(name, (base,), {"__module__": module})


def raising(monkeypatch, error: BaseException) -> None:
    """`distilkit models` raises `error` in the middle of its work."""

    def table():
        raise error

    monkeypatch.setattr("distilkit.models.model_table", table)


LIBRARY_CASES = {
    "onnxruntime Fail": (lib_error("onnxruntime.capi.onnxruntime_pybind11_state", "Fail")("[ONNXRuntimeError] : 1 : "
                         "FAIL : Load model from m.onnx failed:Protobuf parsing failed.\nmore"), "onnxruntime: [ONNX"),
    "onnxruntime InvalidArgument": (lib_error("onnxruntime.capi.onnxruntime_pybind11_state", "InvalidArgument")(
        "bad input"), "onnxruntime: bad input"),
    "OpenVINO missing .bin": (RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'false' failed "
                              "at src/frontends/ir: Weights file m.bin cannot be opened!"), "OpenVINO: Check 'false'"),
    "OpenVINO class": (lib_error("openvino._pyopenvino", "RuntimeError", RuntimeError)("bad xml"), "OpenVINO: bad xml"),
    "PyAV": (lib_error("av.error", "InvalidDataError", ValueError)("[Errno 1094995529] Invalid data"), "PyAV"),
    "Pillow bomb": (Image.DecompressionBombError("Image size (10000000000 pixels) exceeds limit"), "Pillow (image)"),
    "Pillow unidentified": (Image.UnidentifiedImageError("cannot identify image file 'x.png'"), "cannot identify"),
    "yaml": (yaml.YAMLError("while scanning a simple key"), "YAML: while scanning"),
    "rich markup": (lib_error("rich.errors", "MarkupError")("closing tag '[/]' has nothing to close"), "rich"),
    "recursion": (RecursionError("maximum recursion depth exceeded"), "nested too deeply"),
    "torch CPU out of memory": (RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not "
                                "enough memory: you tried to allocate 6400000000000 bytes."), "6400.0 GB"),
    "torch CUDA out of memory": (lib_error("torch.cuda", "OutOfMemoryError", RuntimeError)("CUDA out of memory. "
                                 "Tried to allocate 20.00 GiB (GPU 0; 7.79 GiB total)"), "21.5 GB"),
    "MemoryError": (MemoryError(), "out of memory"),
    "disk full": (OSError(errno.ENOSPC, "No space left on device", "/data/out.png"), "disk full"),
    "quota": (OSError(errno.EDQUOT, "Disk quota exceeded", "/data/out.png"), "/data/out.png"),
    "permission": (PermissionError(errno.EACCES, "Permission denied", "/data/out.png"), "cannot write /data/out.png"),
    "read-only": (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "cannot write /ro/x"),
    "missing": (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/y"), "no such file or folder: /x/y"),
    "DistilkitError": (DistilkitError("the user's own line"), "the user's own line"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LIBRARY_CASES))
def test_a_known_exception_is_one_line_saying_what(case, monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILKIT_CRASH_DIR", str(tmp_path / "crash"))
    error, words = LIBRARY_CASES[case]
    raising(monkeypatch, error)
    line = one_line(runner.invoke(app, ["models"]), words)
    assert "internal error" not in line and not (tmp_path / "crash").exists()


def test_out_of_memory_suggests_a_smaller_size_from_the_command(monkeypatch):
    """Half the request at most, less where the allocator asked for far more than is available; what to do
    where the command has no size option."""
    oom = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8000000000 bytes")
    monkeypatch.setattr("distilkit.utils.limits.available_bytes", lambda: 16 * 10**9)
    assert "try --batch 4" in boundary.classify(oom, {"batch": 8, "imgsz": (512, 512)})[0]
    assert "try --imgsz 352 704" in boundary.classify(oom, {"batch": 1, "imgsz": (512, 1024)})[0]  # half the area
    assert "8.0 GB" in boundary.classify(oom)[0]
    assert "use smaller images" in boundary.classify(oom, {"batch": 1})[0]  # predict: the images are the size
    assert "try a smaller --imgsz" in boundary.classify(oom, {"batch": 1, "imgsz": None})[0]
    monkeypatch.setattr("distilkit.utils.limits.available_bytes", lambda: 10**9)  # 1 GB of the 8 asked
    assert (
        "try --batch 6 "
        in boundary.classify(
            oom,
            {"batch": 65},
        )[0]
        + " "
    )  # 65 x 0.8 / 8


def test_out_of_memory_in_a_command_names_half_its_batch(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def benchmark(*a, **k):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 12000000000 bytes.")

    monkeypatch.setattr("distilkit.engine.speed.benchmark", benchmark)
    argv = ["fps", "--model", "segformer-b0", "--imgsz", "64", "64", "--batch", "8", "--device", "cpu"]
    one_line(runner.invoke(app, argv), "out of memory (an allocation of 12.0 GB failed); try --batch 4")
    assert not (tmp_path / "runs").exists()


def test_an_unexpected_exception_names_its_crash_log(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILKIT_CRASH_DIR", str(tmp_path / "crash"))
    monkeypatch.delenv("DISTILKIT_DEBUG", raising=False)
    raising(monkeypatch, ZeroDivisionError("boom happened\nsecond line"))
    line = one_line(runner.invoke(app, ["models"]), "internal error: ZeroDivisionError: boom happened (traceback in ")
    assert "rerun with --debug" in line and "second line" not in line
    (log,) = (tmp_path / "crash").glob("*.log")
    assert str(log) in line and not list((tmp_path / "crash").glob(".*"))  # written atomically, no temp left
    text = log.read_text()
    assert "Traceback" in text and "ZeroDivisionError: boom happened" in text and "second line" in text
    assert "argv:" in text and "python 3" in text and "distilkit 0.1.0" in text and "torch 2" in text


def test_debug_prints_the_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILKIT_CRASH_DIR", str(tmp_path / "crash"))
    raising(monkeypatch, ZeroDivisionError("boom"))
    result = runner.invoke(app, ["--debug", "models"])
    assert result.exit_code == 1 and "Traceback" in result.stderr and "ZeroDivisionError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: internal error: ZeroDivisionError")
    monkeypatch.setenv("DISTILKIT_DEBUG", "1")
    assert "Traceback" in runner.invoke(app, ["models"]).stderr
    monkeypatch.delenv("DISTILKIT_DEBUG")
    assert "Traceback" not in runner.invoke(app, ["models"]).stderr  # --debug lasts one invocation


def test_a_crash_log_that_cannot_be_written_still_gives_the_line(monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("DISTILKIT_CRASH_DIR", str(tmp_path / "file" / "crash"))
    raising(monkeypatch, ZeroDivisionError("boom"))
    one_line(runner.invoke(app, ["models"]), "internal error: ZeroDivisionError: boom (no crash log could be written")


def run(argv: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120, **kw)


def test_a_closed_pipe_on_stdout_ends_quietly(tmp_path):
    """`distilkit models | head -c 10`, with the reader gone before the first write: no traceback, no
    "Exception ignored" at interpreter exit, exit 141 (as a shell reports SIGPIPE)."""
    proc = subprocess.Popen([*PY, "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141 and err.strip() == "", err


def test_a_full_disk_behind_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        result = subprocess.run([*PY, "models"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    one_line(result, "disk full (or over quota) writing standard output")


SLOW_COMMAND = """
import sys, time
import distilkit.models
def table():
    print("ready", file=sys.stderr, flush=True)
    time.sleep(60)
distilkit.models.model_table = table
from distilkit.cli import main
sys.argv = ["distilkit", "models"]
main()
"""


@pytest.mark.parametrize(("sig", "code", "line"), [(signal.SIGTERM, 143, "interrupted (SIGTERM)"),
                                                   (signal.SIGINT, 130, "interrupted")])  # fmt: skip
def test_sigterm_ends_a_running_command_like_ctrl_c(sig, code, line, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_COMMAND], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stderr.readline().strip() == "ready"
    proc.send_signal(sig)
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == code and err.strip() == line and "Traceback" not in err, err


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


CONFIGS = {
    "a folder": (lambda p: (p.mkdir(), p)[1], "is a folder"),
    "a FIFO (never read: it would block)": (fifo, "not a regular file"),
    "a device": (lambda p: Path("/dev/zero"), "not a regular file"),
    "over 1 MB": (lambda p: (p.write_text("# pad\n" * 200_000), p)[1], "more than an option file's"),
    "an alias bomb": (lambda p: (p.write_text("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 9)}]\n" for c in "bcdefghi")), p)[1],
        "expands to more than 10,000 values"),
    "20000-deep nesting": (lambda p: (p.write_text("batch: " + "[" * 20000 + "]" * 20000), p)[1], "nested more than"),
    "not UTF-8": (lambda p: (p.write_bytes(b"\xff\xfe\x00"), p)[1], "not valid YAML"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CONFIGS))
def test_a_config_that_is_no_option_file_is_refused_before_parsing(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make, words = CONFIGS[case]
    path = make(tmp_path / "config.yaml")
    start = time.monotonic()
    line = one_line(runner.invoke(app, ["fps", "--config", str(path)]), words)
    assert line.startswith(f"error: --config {path}: ") and time.monotonic() - start < 20
    assert not (tmp_path / "runs").exists()


def test_a_few_aliases_still_read():
    from distilkit.cli.options import _config_loader

    assert yaml.load("a: &x 3\nb: *x\n", Loader=_config_loader()) == {"a": 3, "b": 3}


def test_an_unexpected_error_in_the_config_callback_goes_through_the_boundary(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILKIT_CRASH_DIR", str(tmp_path / "crash"))

    def broken(path):
        raise KeyError("odd")

    monkeypatch.setattr("distilkit.cli.options.read_config", broken)
    (tmp_path / "c.yaml").write_text("batch: 2\n")
    one_line(runner.invoke(app, ["fps", "--config", str(tmp_path / "c.yaml")]), "internal error: KeyError")


@pytest.mark.parametrize("value", ["100000", "0", "-3", "two"])
def test_an_absurd_omp_num_threads_is_one_line_before_torch(value, tmp_path):
    """100000 segfaulted torch at import: refused by main() before anything imports torch."""
    one_line(run([*PY, "models"], {"OMP_NUM_THREADS": value}, cwd=tmp_path), f"OMP_NUM_THREADS={value}: expected")


def test_mkl_num_threads_is_checked_too(monkeypatch, capsys):
    from distilkit.cli import main

    monkeypatch.setenv("MKL_NUM_THREADS", "100000")
    monkeypatch.setattr(sys, "argv", ["distilkit", "models"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2 and capsys.readouterr().err.startswith("error: MKL_NUM_THREADS=100000")


def test_too_many_threads_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line(runner.invoke(app, ["fps", "--threads", "100000"]), "--threads 100000: expected >= 1 and <=")


def results(names: list[str]) -> dict:
    per = {n: {"iou": 0.5, "acc": 0.5, "pixels": 10} for n in names}
    return {"per_class": per, "miou": 0.5, "mean_acc": 0.5, "pixel_acc": 0.5, "images": 1, "images_per_s": 1.0}


def test_class_names_are_printed_as_data_not_markup(tmp_path, capsys):
    from distilkit.engine.report import report_eval

    names = ["[/]", "[bold]car", ":smile:", "[red]x[/red]"]
    report_eval(results(names), tmp_path, "model on [data] set")
    out = capsys.readouterr().out
    assert all(n in out for n in names) and "[data]" in out
    assert list(json.loads((tmp_path / "results.json").read_text())["per_class"]) == names


def test_results_are_saved_before_they_are_printed(tmp_path, monkeypatch):
    from distilkit.engine import report

    def print_fails(table):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(report, "print_table", print_fails)
    with pytest.raises(BrokenPipeError):
        report.report_eval(results(["road"]), tmp_path, "t")
    assert (tmp_path / "results.json").exists() and (tmp_path / "results.csv").exists()


def test_warnings_print_paths_as_data(capsys):
    from distilkit.utils.console import warn

    warn("skipping /data/[/]/x.png")
    assert "warning: skipping /data/[/]/x.png" in capsys.readouterr().err


def test_check_fits_refuses_an_impossible_size_with_the_estimate(monkeypatch):
    monkeypatch.setattr("distilkit.utils.limits.available_bytes", lambda: 16 * 10**9)
    with pytest.raises(DistilkitError, match=r"--imgsz 40000 40000 x --batch 1 needs about 3200\.0 GB, 16\.0 GB "
                                             r"available; try --imgsz \d+ \d+"):  # fmt: skip
        check_fits(1, 40000, 40000, training=False)
    with pytest.raises(DistilkitError, match=r"try --batch 6$"):
        check_fits(8, 512, 512, training=True)  # 8 x 2.6 GB
    check_fits(2, 512, 512, training=False)  # 1 GB: fits


@pytest.mark.parametrize("argv", [["--imgsz", "16000", "16000"], ["--batch", "60000"]])  # within the schema's bounds
def test_fps_refuses_a_size_that_cannot_fit_before_work(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("distilkit.utils.limits.available_bytes", lambda: 16 * 10**9)
    one_line(runner.invoke(app, ["fps", "--device", "cpu", *argv]), "needs about")
    assert not (tmp_path / "runs").exists()


def test_predict_refuses_a_1x10000_image_before_any_output(tiny_ckpt, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("distilkit.utils.limits.available_bytes", lambda: 16 * 10**9)
    Image.fromarray(np.zeros((1, 10000, 3), np.uint8)).save(tmp_path / "strip.png")
    argv = ["predict", str(tmp_path / "strip.png"), "--weights", str(tiny_ckpt), "--device", "cpu"]
    one_line(runner.invoke(app, argv), "an image of 1x10000 (scaled to 64x640000) x --batch 1 needs about")
    assert not (tmp_path / "runs").exists()


def _distilkit(argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """The console script in a subprocess, bounded in time: a pipe read forever fails the test, not CI."""
    code = "import sys; from distilkit.cli import main; sys.argv = ['distilkit', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def test_a_pipe_among_the_inputs_is_skipped_or_refused_never_read(tiny_ckpt, tiny_data, tmp_path):
    """A FIFO named like an image blocks whoever opens it: predict skips it in a folder (with a warning) and
    refuses it by name; a data set holding one refuses it with the file named (data.base.check_regular)."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(folder / "ok.png")
    os.mkfifo(folder / "pipe.png")
    weights = ["--weights", str(tiny_ckpt), "--device", "cpu"]
    done = _distilkit(["predict", str(folder), *weights, "--out", str(tmp_path / "p1")], tmp_path)
    assert done.returncode == 0 and "pipe.png" in done.stderr, done.stderr
    assert json.loads((tmp_path / "p1" / "predictions.json").read_text())["count"] == 1
    done = _distilkit(["predict", str(folder / "pipe.png"), *weights, "--out", str(tmp_path / "p2")], tmp_path)
    assert done.returncode == 1 and "not a regular file (a pipe, a device" in done.stderr.strip().splitlines()[-1]
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(tiny_data), str(data)], check=True)
    (data / "images" / "val" / "0001.png").unlink()
    os.mkfifo(data / "images" / "val" / "0001.png")
    argv = ["evaluate", str(tiny_ckpt), "--data", "folder", "--data-root", str(data), "--device", "cpu",
            "--workers", "0", "--out", str(tmp_path / "e")]  # fmt: skip
    done = _distilkit(argv, tmp_path)
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert done.returncode == 1 and len(lines) == 1 and "a pipe, socket or device" in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "e").exists()


def test_a_signal_inside_an_uninterrupted_block_is_raised_when_it_ends(monkeypatch):
    """A checkpoint and its training state are written together (trainer.validate_and_save): a Ctrl-C or
    SIGTERM arriving between the two waits for both."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set in the main thread only")
    monkeypatch.setattr(boundary, "_pending", None)
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    boundary.install_signals()
    written = []
    try:
        with pytest.raises(boundary.Terminated), boundary.uninterrupted():
            written.append("last.safetensors")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, between the two writes
            written.append("last.state.pt")
        assert written == ["last.safetensors", "last.state.pt"]
        with pytest.raises(KeyboardInterrupt):  # outside a block: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def test_a_training_stopped_before_its_first_save_can_be_retried_with_the_same_out(tiny_data, tmp_path):
    """SIGTERM before the first save leaves nothing to resume: the run directory (config.yaml, args.json, the
    live log) is taken back, so the same command runs again instead of 'already holds files'."""
    out = tmp_path / "run"
    argv = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "segformer-b0",
            "--imgsz", "32", "64", "--batch", "1", "--iters", "100000", "--val-every", "100000", "--workers", "0",
            "--device", "cpu", "--out", str(out)]  # fmt: skip
    code = "import sys; from distilkit.cli import main; sys.argv = ['distilkit', *sys.argv[1:]]; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "args.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # into the training loop
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.strip().endswith("interrupted (SIGTERM)"), err[-2000:]
    assert not out.exists(), sorted(p.name for p in out.iterdir())
    argv[argv.index("--iters") + 1] = "1"
    argv[argv.index("--val-every") + 1] = "1"
    done = _distilkit(argv, tmp_path)
    assert done.returncode == 0 and (out / "weights" / "last.state.pt").is_file(), done.stderr[-2000:]


def test_a_config_giving_one_option_in_both_spellings_is_refused(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("val_every: 1\nval-every: 2\n")
    result = runner.invoke(app, ["train-teacher", "--config", str(config), "--out", str(tmp_path / "run")])
    one_line(result, "option 'val-every' given twice")
    assert not (tmp_path / "run").exists()


def test_out_of_memory_on_one_image_in_predict_says_to_resize_it(tiny_ckpt, tmp_path, monkeypatch):
    """Halving --batch cannot help one image: the line says what can."""
    monkeypatch.chdir(tmp_path)

    def oom(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 25600000000 bytes")

    monkeypatch.setattr("distilkit.engine.predictor.infer_logits", oom)
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(tmp_path / "one.png")
    argv = ["predict", str(tmp_path / "one.png"), "--weights", str(tiny_ckpt), "--device", "cpu", "--batch", "4"]
    line = one_line(runner.invoke(app, argv), "out of memory on one image of 32x64")
    assert "resize it" in line and "--batch" not in line
