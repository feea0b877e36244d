"""Bad input to every command, kill -9 and resume, atomic writes, --skip-bad (listed in docs/reliability.md).

Every bad-input case must give one clear `error:` line, a non-zero exit code and no traceback, leave every
file that was there before unchanged, and (when it fails before training starts) leave no run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from distilkit.cli import app
from distilkit.engine.checkpoint import read_meta

runner = CliRunner()
TINY = ["--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu"]
TRAIN = ["train-teacher", "--data", "folder", "--model", "segformer-b0", "--iters", "3", "--val-every", "3", *TINY]


class RunsCode:
    """A pickle that, if ever unpickled, writes PWNED: no file distilkit opens may run it."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def snapshot(root: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def copy_data(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path)


# ---- the cases: name -> (setup(tmp, data, ckpt) -> argv, expected words, fails before any run dir) ----------
def data_case(defect: Callable[[Path], None], command: str = "evaluate") -> Callable:
    """A copy of the tiny folder data set with one defect in its val split, evaluated (or trained on)."""

    def setup(tmp: Path, data: Path, ckpt: Path) -> list[str]:
        root = copy_data(data, tmp / "data")
        defect(root)
        if command == "evaluate":
            return ["evaluate", str(ckpt), "--data", "folder", "--data-root", str(root), *TINY[3:]]
        return [*TRAIN, "--data-root", str(root)]

    return setup


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def evil_pickle(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": RunsCode()}, path, pickle_module=pickle)
    return path


def with_arch(tmp: Path, ckpt: Path, arch: dict) -> Path:
    """The checkpoint's weights under metadata that names another architecture."""
    from distilkit.engine.checkpoint import load_model, save_model

    model, meta = load_model(ckpt)
    meta["arch"] = arch
    path = tmp / f"{arch['name']}-{len(arch)}.safetensors"
    save_model(path, model, meta)
    return path


def make(path: Path, data: bytes = b"") -> Path:
    path.write_bytes(data)
    return path


def zero_frame_video(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.height, stream.width, stream.pix_fmt = 64, 128, "yuv420p"
        container.start_encoding()  # a header and no frames
        container.mux(stream.encode(None))
    return path


def resume_dir_with(tmp: Path, state: Callable[[Path], None]) -> list[str]:
    run = tmp / "run"
    (run / "weights").mkdir(parents=True)
    (run / "args.json").write_text(json.dumps({"command": "train-teacher", "data": "synth-gta", "device": "cpu"}))
    state(run / "weights" / "last.state.pt")
    return ["train-teacher", "--resume", str(run)]


def with_meta(tmp: Path, ckpt: Path, edit: Callable[[dict], object], name: str) -> Path:
    """The checkpoint's weights under metadata changed by `edit` (a dict edited in place, or raw text)."""
    from safetensors.torch import load_file, save_file

    from distilkit.engine.checkpoint import FORMAT

    meta = read_meta(ckpt)
    raw = edit(meta)
    path = tmp / f"{name}.safetensors"
    save_file(load_file(str(ckpt)), str(path), metadata={FORMAT: raw if isinstance(raw, str) else json.dumps(meta)})
    return path


def nan_weights(tmp: Path, ckpt: Path) -> Path:
    from safetensors.torch import load_file, save_file

    from distilkit.engine.checkpoint import FORMAT

    state = load_file(str(ckpt))
    first = next(k for k, v in state.items() if v.is_floating_point())
    state[first] = torch.full_like(state[first], float("nan"))
    path = tmp / "nan.safetensors"
    save_file(state, str(path), metadata={FORMAT: json.dumps(read_meta(ckpt))})
    return path


def classes_file(content: object) -> Callable[[Path], None]:
    return lambda r: (
        (r / "classes.yaml").unlink(missing_ok=True),
        (r / "classes.json").write_text(json.dumps(content)),
    )


VAL0 = "images/val/0000.png"
CASES: dict[str, tuple[Callable, str]] = {
    # data files
    "label missing for an image": (
        data_case(lambda r: (r / "masks/val/0000.png").rename(r / "masks/val/0000.bak")), "no mask"),
    "image empty (0 bytes)": (data_case(lambda r: (r / VAL0).write_bytes(b"")), "cannot read image"),
    "image truncated": (data_case(lambda r: truncate(r / VAL0)), "cannot read image"),
    "image not an image (text)": (data_case(lambda r: (r / VAL0).write_text("hello")), "cannot read image"),
    "label value out of range": (
        data_case(lambda r: png(r / "masks/val/0001.png", np.full((64, 128), 77, np.uint8))), "does not define"),
    "label of another size than its image": (
        data_case(lambda r: png(r / "masks/val/0001.png", np.zeros((32, 32), np.uint8))), "but image"),
    "label in colour (RGB)": (
        data_case(lambda r: png(r / "masks/val/0001.png", np.zeros((64, 128, 3), np.uint8))), "colour image"),
    "empty data folder": (
        data_case(lambda r: [p.unlink() for p in (r / "images/val").iterdir()]), "no images"),
    "corrupt image in the middle of the training set": (
        data_case(lambda r: (r / "images/train/0003.png").write_bytes(b"garbage"), "train"), "0003.png"),
    "two corrupt images in the training set (all named before training)": (
        data_case(lambda r: ((r / "images/train/0001.png").write_bytes(b"junk"),
                             (r / "images/train/0004.png").write_bytes(b"junk")), "train"),
        "2 bad sample(s) in folder (train), found before training"),
    "data root that is not there": (
        lambda t, d, c: [*TRAIN, "--data-root", str(t / "nowhere")], "no folder data"),
    "unknown data set": (lambda t, d, c: ["evaluate", str(c), "--data", "kitti"], "unknown dataset"),
    "checkpoint and data of different class counts": (
        lambda t, d, c: ["evaluate", str(c), "--data", "camvid", "--data-root", str(t)], "camvid"),
    # checkpoints
    "checkpoint missing": (lambda t, d, c: ["evaluate", str(t / "nope.safetensors")], "not found"),
    "checkpoint empty (0 bytes)": (
        lambda t, d, c: ["evaluate", str(make(t / "e.safetensors"))], "cannot read checkpoint"),
    "checkpoint truncated": (
        lambda t, d, c: ["evaluate", str(make(t / "t.safetensors", c.read_bytes()[:1000]))],
        "cannot read checkpoint"),
    "checkpoint of another architecture": (
        lambda t, d, c: ["evaluate", str(with_arch(t, c, {**read_meta(c)["arch"], "name": "unet-resnet18"}))],
        "does not fit architecture"),
    "checkpoint whose metadata names no buildable model": (
        lambda t, d, c: ["evaluate", str(with_arch(t, c, {"name": "unet-resnet18", "depth": "deep"}))],
        "may not hold 'depth'"),
    "checkpoint that is a code-running pickle (evaluate)": (
        lambda t, d, c: ["evaluate", str(evil_pickle(t / "evil.safetensors"))], "cannot read checkpoint"),
    "teacher that is a code-running pickle (distill sdd)": (
        lambda t, d, c: ["distill", "sdd", "--teacher", str(evil_pickle(t / "evil.pt")), "--data", "folder",
                         "--data-root", str(d), *TINY], "cannot read checkpoint"),  # fmt: skip
    "training state that is a code-running pickle (--resume)": (
        lambda t, d, c: resume_dir_with(t, evil_pickle), "cannot resume"),
    "training state truncated (--resume)": (
        lambda t, d, c: resume_dir_with(t, lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40)), "cannot resume"),
    "run directory without a saved state (--resume)": (
        lambda t, d, c: ["train-teacher", "--resume", str(t)], "cannot resume"),
    # videos and images to predict on
    "video unreadable": (
        lambda t, d, c: ["predict", str(make(t / "v.mp4", b"\x00" * 100)), "--weights", str(c)], "video"),
    "video with zero frames": (
        lambda t, d, c: ["predict", str(zero_frame_video(t / "z.mp4")), "--weights", str(c)], "video"),
    "image to predict on corrupt": (
        lambda t, d, c: ["predict", str(make(t / "bad.png", b"not a png")), "--weights", str(c)], "cannot read image"),
    "no checkpoint given and none under runs/ (predict)": (
        lambda t, d, c: ["predict", str(d / "images/val/0000.png")], "none under ./runs of"),
    "no checkpoint given and none under runs/ (export-onnx)": (
        lambda t, d, c: ["export-onnx"], "none under ./runs of"),
    "image to predict on missing": (
        lambda t, d, c: ["predict", str(t / "nope.png"), "--weights", str(c)], "not found"),
    "folder to predict on empty": (
        lambda t, d, c: ["predict", str(t / "keep" / "empty"), "--weights", str(c)], "no images"),
    # devices
    "CUDA device that is not there (train-teacher)": (
        lambda t, d, c: [*TRAIN[:-2], "--data-root", str(d), "--device", "cuda"], "CUDA is not available"),
    "CUDA device that is not there (fps)": (
        lambda t, d, c: ["fps", str(c), "--device", "cuda:3"], "CUDA is not available"),
    "--half without a CUDA device (fps)": (
        lambda t, d, c: ["fps", "--half", "--model", "segformer-b0"], "--half needs a CUDA device"),
    "device name that means nothing": (lambda t, d, c: ["evaluate", str(c), "--device", "tpu"], "--device"),
    # outputs
    "--out that already holds files": (
        lambda t, d, c: [*TRAIN, "--data-root", str(d), "--out", str(t / "keep")], "already holds files"),
    "--out that cannot be written (a file on the way)": (
        lambda t, d, c: [*TRAIN, "--data-root", str(d), "--out", str(t / "notes.txt" / "run")],
        "cannot create run directory"),
    "ONNX output that exists": (
        lambda t, d, c: ["export-onnx", str(c), "--out", str(t / "keep" / "model.onnx")], "exists"),
    # names and settings
    "unknown model": (lambda t, d, c: [*TRAIN, "--data-root", str(d), "--model", "resnet9000"], "unknown model"),
    "unknown optimizer": (
        lambda t, d, c: [*TRAIN, "--data-root", str(d), "--optimizer", "adamax"], "unknown optimizer"),
    "unknown SAKD base": (
        lambda t, d, c: ["distill", "sakd", "--teacher", str(c), "--base", "mse", "--data", "folder",
                         "--data-root", str(d), *TINY], "--base"),  # fmt: skip
    "student encoder weights file that holds no weights (distill sakd --pretrained)": (
        lambda t, d, c: ["distill", "sakd", "--teacher", str(c), "--pretrained", str(make(t / "enc.pth", b"v1\n")),
                         "--data", "folder", "--data-root", str(d), *TINY], "cannot read weights"),  # fmt: skip
    "unknown SAKD selection": (
        lambda t, d, c: ["distill", "sakd", "--teacher", str(c), "--selection", "best", "--data", "folder",
                         "--data-root", str(d), *TINY], "--selection"),  # fmt: skip
    "student encoder weights missing (distill sdd --pretrained)": (
        lambda t, d, c: ["distill", "sdd", "--teacher", str(c), "--pretrained", str(t / "enc.pth"), "--data",
                         "folder", "--data-root", str(d), *TINY], "no such file"),  # fmt: skip
    "student encoder weights of another architecture (distill sakd --pretrained)": (
        lambda t, d, c: ["distill", "sakd", "--teacher", str(c), "--student", "unet-resnet18", "--pretrained",
                         str(c), "--data", "folder", "--data-root", str(d), *TINY], "no tensor in it matches"),
    # numbers out of range: refused before anything is made (schema.CommandOptions, schema.TrainSettings)
    **{f"{flag} {value} ({argv[0]})": (lambda t, d, c, argv=argv, flag=flag, value=value: [
        *[str(c) if a == "CKPT" else str(d) if a == "DATA" else a for a in argv], flag, value],
        f"{flag} {value}")
       for argv, flag, value in [
           ((*TRAIN, "--data-root", "DATA"), "--batch", "0"), ((*TRAIN, "--data-root", "DATA"), "--iters", "-5"),
           ((*TRAIN, "--data-root", "DATA"), "--val-every", "0"), ((*TRAIN, "--data-root", "DATA"), "--workers", "-1"),
           ((*TRAIN, "--data-root", "DATA"), "--lr", "0.0"), ((*TRAIN, "--data-root", "DATA"), "--warmup", "-1"),
           (("distill", "sdd", "--teacher", "CKPT", "--data", "folder", "--data-root", "DATA", *TINY), "--batch", "0"),
           (("distill", "duda", "--src", "folder", "--tgt", "folder", "--data-root", "DATA"), "--batch", "0"),
           (("distill", "duda", "--src", "folder", "--tgt", "folder", "--data-root", "DATA"), "--stage1-iters", "0"),
           (("predict", "DATA/images/val/0000.png", "--weights", "CKPT"), "--alpha", "5.0"),
           (("predict", "DATA/images/val/0000.png", "--weights", "CKPT"), "--batch", "0"),
           (("fps", "--model", "segformer-b0"), "--iters", "0"), (("fps", "--model", "segformer-b0"), "--warmup", "-1"),
           (("evaluate", "CKPT", "--data-root", "DATA"), "--limit", "0"),
           ((*TRAIN, "--data-root", "DATA"), "--threads", "0"), ((*TRAIN, "--data-root", "DATA"), "--train-limit", "0"),
           (("distill", "sdd", "--teacher", "CKPT", "--data", "folder", "--data-root", "DATA", *TINY), "--val-limit",
            "0"),
       ]},
    "--imgsz 0 0 (train-teacher)": (lambda t, d, c: [*TRAIN, "--data-root", str(d), "--imgsz", "0", "0"],
                                    "--imgsz 0 0"),
    # runs that are not what they claim
    "--resume of a run another command made": (
        lambda t, d, c: ["distill", "sdd", "--resume", resume_dir_with(t, lambda p: p.write_bytes(b"x"))[-1]],
        "`distilkit train-teacher` made it"),
    "args.json truncated (--resume)": (
        lambda t, d, c: resume_dir_with(t, lambda p: (p.write_bytes(b"x"),
                                                      (p.parents[1] / "args.json").write_text('{"command": "tra'))),
        "not valid JSON"),
    "args.json with a number of the wrong type (--resume)": (
        lambda t, d, c: resume_dir_with(t, lambda p: (p.write_bytes(b"x"), (p.parents[1] / "args.json").write_text(
            json.dumps({"command": "train-teacher", "batch": "eight"})))), "--batch eight"),
    # metadata, validated once (engine/checkpoint.validate_meta; the folder data set's classes file)
    "checkpoint metadata that is not JSON": (
        lambda t, d, c: ["evaluate", str(with_meta(t, c, lambda m: "{not json", "m1"))], "not valid JSON"),
    "checkpoint metadata with a class list of the wrong type": (
        lambda t, d, c: ["evaluate", str(with_meta(t, c, lambda m: m.update(class_names="road"), "m2"))],
        "'class_names'"),
    "checkpoint whose class count disagrees with its head": (
        lambda t, d, c: ["evaluate", str(with_meta(t, c, lambda m: m.update(num_classes=7), "m3"))], "disagrees"),
    "checkpoint whose ignore index is a class id": (
        lambda t, d, c: ["evaluate", str(with_meta(t, c, lambda m: m.update(ignore_index=2), "m4"))],
        "'ignore_index'"),
    "checkpoint with a non-positive std": (
        lambda t, d, c: ["evaluate", str(with_meta(t, c, lambda m: m.update(std=[0, 1, 1]), "m5"))], "'std'"),
    "checkpoint with NaN weights (a diverged run)": (
        lambda t, d, c: ["evaluate", str(nan_weights(t, c))], "NaN or infinite weights"),
    "classes.json that is a list": (data_case(classes_file(["road", "car"])), "must be a mapping"),
    "classes.json with more than 255 classes": (
        data_case(classes_file({"names": [f"c{i}" for i in range(300)]})), "at most 255"),
    "classes.json whose ignore index is out of range": (
        data_case(classes_file({"names": ["a", "b"], "ignore_index": 300})), "ignore_index 300"),
    "evaluation mode that does not exist": (
        lambda t, d, c: ["evaluate", str(c), "--mode", "zoom", "--data", "folder", "--data-root", str(d)], "--mode"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_clear_line(case, tiny_data, tiny_ckpt, tmp_path, monkeypatch):
    setup, words = CASES[case]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep" / "empty").mkdir(parents=True)
    (tmp_path / "keep" / "model.onnx").write_text("the user's own file")
    (tmp_path / "notes.txt").write_text("precious")
    argv = setup(tmp_path, tiny_data, tiny_ckpt)
    before = snapshot(tmp_path)
    result = runner.invoke(app, argv)
    err = result.stderr.strip()
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0] and words in errors[0], err  # after progress
    after = snapshot(tmp_path)
    assert all(after.get(p) == h for p, h in before.items()), "a file the user had was changed or removed"
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "runs").exists(), "a failed command left a run directory that holds nothing of its run"


def test_the_scan_is_cached_per_file(tiny_data, tmp_path, monkeypatch):
    """A second scan of unchanged files opens none of them; a changed file is scanned again."""
    from distilkit.data import build_dataset, scan

    root = copy_data(tiny_data, tmp_path / "data")
    calls = []
    real = scan.check_sample
    monkeypatch.setattr(scan, "check_sample", lambda *a: calls.append(a[0].name) or real(*a))
    scan.preflight(build_dataset("folder", "train", root))
    first = len(calls)
    scan.preflight(build_dataset("folder", "train", root))
    assert first == 6 and len(calls) == first
    (root / "images/train/0002.png").write_bytes(b"junk")
    with pytest.raises(Exception, match="0002.png"):
        scan.preflight(build_dataset("folder", "train", root))
    assert calls[first:] == ["0002.png"]


def test_skip_bad_logs_the_file_and_finishes(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = copy_data(tiny_data, tmp_path / "data")
    (root / "images/train/0003.png").write_bytes(b"garbage")
    png(root / "masks/val/0001.png", np.full((64, 128), 77, np.uint8))
    result = runner.invoke(app, [*TRAIN, "--data-root", str(root), "--skip-bad", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "skipping sample 3 of folder (train)" in result.stderr and "0003.png" in result.stderr
    assert "skipping sample 1 of folder (val)" in result.stderr
    assert json.loads((tmp_path / "r/results.json").read_text())["images"] == 2  # the bad val image left out


# ---- kill -9 and resume --------------------------------------------------------------------------------------
def distilkit(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same in every run: bitwise equality needs it
    cmd = [sys.executable, "-m", "distilkit", *args]
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def method_args(method: str, data: Path, ckpt: Path) -> list[str]:
    common = ["--data-root", str(data), "--imgsz", "64", "128", "--batch", "1", "--workers", "0", "--device", "cpu"]
    if method == "train-teacher":
        return ["train-teacher", "--data", "folder", "--model", "unet-resnet18", "--iters", "6", "--val-every", "3",
                "--warmup", "1", *common]  # fmt: skip
    if method == "duda":
        return ["distill", "duda", "--src", "folder", "--tgt", "folder", "--teacher-model", "segformer-b0",
                "--student-model", "fastlitessnet", "--stage1-iters", "3", "--stage3-iters", "3", "--val-every", "3",
                "--inconsistency-images", "2", *common]  # fmt: skip
    student = ["--student", "unet-resnet18"] if method != "hdl" else ["--width", "0.25"]
    length = ["--epochs", "2", "--ratio", "0.5"] if method == "sakd" else ["--iters", "6"]
    return ["distill", method, "--teacher", str(ckpt), "--data", "folder", *student, *length, "--val-every", "3",
            "--warmup", "1", *common]  # fmt: skip


@pytest.mark.parametrize("method", ["train-teacher", "duda", "sakd", "hdl", "sdd"])
def test_kill_9_then_resume_ends_like_a_run_never_killed(method, tiny_data, tiny_ckpt, tmp_path):
    """SIGKILL as soon as the first training state is on disk (a later save may be half written), then
    `--resume`: the final weights are bitwise those of an uninterrupted run (CPU, same seed)."""
    from safetensors.torch import load_file

    args = method_args(method, tiny_data, tiny_ckpt)
    full, cut = distilkit(*args, "--out", "full", cwd=tmp_path), distilkit(*args, "--out", "cut", cwd=tmp_path)
    state = tmp_path / "cut/weights/last.state.pt"
    deadline = time.time() + 240
    while not state.exists() and cut.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    cut.send_signal(signal.SIGKILL)
    cut.wait()
    assert cut.returncode == -signal.SIGKILL, f"the run ended before it could be killed: {cut.stderr.read()[-2000:]}"
    finish(full)
    finish(distilkit(*args[:2] if method != "train-teacher" else args[:1], "--resume", "cut", cwd=tmp_path))
    for name in ["last"] + (["teacher"] if method == "duda" else []):
        a, b = (load_file(tmp_path / f"{run}/weights/{name}.safetensors") for run in ("full", "cut"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


def test_a_write_killed_halfway_leaves_the_previous_file(tmp_path):
    """atomic_write: a process killed while writing a checkpoint leaves the one before it intact."""
    target = tmp_path / "last.state.pt"
    target.write_bytes(b"the previous checkpoint")
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom distilkit.utils.files import atomic_write\n"
        "def slow(p):\n    p.write_bytes(b'half of a new chec'); print('writing', flush=True); time.sleep(60)\n"
        f"atomic_write(Path({str(target)!r}), slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.read_bytes() == b"the previous checkpoint"


def test_every_case_is_listed_in_the_docs():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text()
    assert f"## Bad input: {len(CASES)} cases" in doc
    assert all(f"| {case} |" in doc for case in CASES)


# ---- disks, permissions, run directories --------------------------------------------------------------------
def test_written_files_get_the_umask_permissions(tmp_path):
    from distilkit.utils.files import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.json", lambda p: p.write_text("{}"))
        os.umask(0o077)
        atomic_write(tmp_path / "b.json", lambda p: p.write_text("{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644  # mkstemp alone gives 0600
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path):
    import errno

    from distilkit.errors import DistilkitError
    from distilkit.utils.files import atomic_write

    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "args.json").write_text("{}")
    target = run / "weights" / "last.safetensors"
    target.write_bytes(b"the previous checkpoint")

    def full(p: Path) -> None:
        p.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DistilkitError, match="no space left") as e:
        atomic_write(target, full)
    assert "previous version is intact" in str(e.value) and f"--resume {run}" in str(e.value)
    assert target.read_bytes() == b"the previous checkpoint"
    assert [p.name for p in (run / "weights").iterdir()] == ["last.safetensors"]  # no temp file left


def test_run_directories_are_claimed_atomically(tmp_path, monkeypatch):
    """Many processes started at once each get their own run directory (mkdir, not an exists-check)."""
    monkeypatch.chdir(tmp_path)
    code = "from distilkit.utils.files import increment_run_dir as f; print(f('train-teacher'))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(6)]
    dirs = [p.communicate()[0].strip() for p in procs]
    assert len(set(dirs)) == 6 and all((tmp_path / d).is_dir() for d in dirs)


@pytest.mark.parametrize("out", ["new/deep/run", "empty", None])
def test_a_command_failing_before_its_run_writes_takes_its_run_directory_back(out, tmp_path, monkeypatch):
    """`demo --device cuda:3` checks the device after making the run directory: the failure takes back what it
    made (an --out the user already had stays, empty), so the same command can be retried at once."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    argv = ["demo", "--device", "cuda:3", *(["--out", out] if out else [])]
    for _ in range(2):  # the retry is not refused for "already holds files"
        result = runner.invoke(app, argv)
        assert result.exit_code == 1 and "already holds" not in result.stderr, result.stderr
        assert "CUDA" in result.stderr.strip().splitlines()[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any((tmp_path / "empty").iterdir())


def test_a_run_directory_that_holds_more_than_its_config_is_kept(tmp_path, monkeypatch):
    from distilkit.utils.files import discard_unused_run_dirs, increment_run_dir, invocation, made_run_dirs

    monkeypatch.chdir(tmp_path)
    token = made_run_dirs.set([])
    try:
        invocation.set(("distilkit demo", {"seed": 0}))
        kept, gone = increment_run_dir("demo"), increment_run_dir("demo", out=tmp_path / "a" / "b")
        (kept / "weights").mkdir()
        (kept / "weights" / "last.safetensors").write_bytes(b"saved")  # an empty folder is scaffold: not this
        (gone / "weights").mkdir()
        discard_unused_run_dirs()
    finally:
        made_run_dirs.reset(token)
    assert (kept / "config.yaml").is_file() and not gone.exists() and not (tmp_path / "a").exists()


def test_a_failed_command_never_takes_back_a_folder_that_held_files(tmp_path, monkeypatch):
    """--exist-ok into a folder of the user's: a failure leaves it as it was, its config.yaml included."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "config.yaml").write_text("the user's own")
    result = runner.invoke(app, ["demo", "--device", "cuda:3", "--out", "mine", "--exist-ok"])
    assert result.exit_code == 1 and (tmp_path / "mine").is_dir()
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["config.yaml"]
