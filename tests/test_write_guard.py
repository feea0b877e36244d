"""The write guard (utils.files.WriteGuard): no file distilkit writes replaces one it did not write in this run
(unless --exist-ok), never an input of the command nor a file inside an input folder; export companions are
claimed with their file; predict's output names never collide, case-insensitively."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app
from distilkit.engine.sources import IMAGE_SUFFIXES, output_names
from distilkit.errors import DistilkitError
from distilkit.utils.files import WriteGuard, name_key

runner = CliRunner()
TINY = ["--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu"]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root`: its bytes and modification time (a rewrite with equal bytes still shows)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}  # fmt: skip


def image(path: Path, h: int = 8, w: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(path, format="PNG")  # PNG bytes whatever the suffix
    return path


# ---- the guard itself ----------------------------------------------------------------------------------------


def test_the_guard_refuses_what_this_run_did_not_write(tmp_path):
    theirs, ckpt, data = tmp_path / "theirs.json", tmp_path / "ck.safetensors", tmp_path / "data"
    for p in (theirs, ckpt, data / "masks" / "0.png"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("the user's")
    guard = WriteGuard()
    guard.protect(ckpt, data)
    with pytest.raises(DistilkitError, match="exists and this run did not write it"):
        guard.claim(theirs)
    guard.claim(tmp_path / "new.json")
    guard.claim(tmp_path / "new.json")  # a path this run wrote: rewritten freely (last.safetensors each save)
    lenient = WriteGuard(exist_ok=True)
    lenient.protect(ckpt, data)
    lenient.claim(theirs)  # --exist-ok replaces the user's file ...
    (tmp_path / "hard").hardlink_to(ckpt)
    for inside in (ckpt, tmp_path / "." / "ck.safetensors", tmp_path / "hard", data / "masks" / "0.png", data / "x"):
        with pytest.raises(DistilkitError, match="input"):  # ... never an input, nor into an input folder
            lenient.claim(inside)
    lenient.own(data / "runs" / "exp")  # a run directory made new inside it is the run's own
    lenient.claim(data / "runs" / "exp" / "masks" / "0.png")


def test_a_refused_companion_leaves_nothing_claimed(tmp_path):
    (tmp_path / "m.bin").write_text("the user's weights")
    guard = WriteGuard()
    with pytest.raises(DistilkitError, match=r"m\.bin.*written with m\.xml"):
        guard.claim(tmp_path / "m.xml")
    assert not guard.written


# ---- the failures the guard was built for ----------------------------------------------------------------------


def test_compare_into_a_folder_of_the_users_is_refused(tiny_data, tiny_ckpt, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "compare.json").write_text('{"mine": true}')
    (mine / "config.yaml").write_text("mine: true\n")
    before = snapshot(mine)
    args = ["compare", "--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data), "--student",
            "fastlitessnet", "--methods", "kd", "--seeds", "0", "--iters", "1", *TINY, "--out", str(mine)]  # fmt: skip
    one_error_line(runner.invoke(app, args), "already holds files")
    assert snapshot(mine) == before


def test_openvino_export_never_replaces_a_bin_it_did_not_write(tiny_ckpt, tmp_path):
    pytest.importorskip("openvino")
    (tmp_path / "m.bin").write_bytes(b"the user's weights")
    before = snapshot(tmp_path)
    args = ["export-onnx", str(tiny_ckpt), "--format", "openvino", "--out", str(tmp_path / "m.xml")]
    one_error_line(runner.invoke(app, args), "m.bin")
    assert snapshot(tmp_path) == before  # nothing written, not even the .xml


def test_export_never_writes_over_the_checkpoint_it_exports(tiny_ckpt, tmp_path):
    ck = tmp_path / "ck.safetensors"
    shutil.copyfile(tiny_ckpt, ck)
    before = snapshot(tmp_path)
    one_error_line(runner.invoke(app, ["export-onnx", str(ck), "--out", str(ck), "--exist-ok"]), "is an input")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("out", ["data", "data/images"])
def test_predict_never_writes_into_the_data_it_reads(tiny_ckpt, tmp_path, out):
    """`predict data/images --out data --exist-ok` wrote its masks over the ground truth in data/masks."""
    data = tmp_path / "data"
    for name in ("0000.png", "0001.png"):
        image(data / "images" / name)
        (data / "masks").mkdir(exist_ok=True)
        Image.fromarray(np.ones((8, 8), np.uint8)).save(data / "masks" / name)
    before = snapshot(tmp_path)
    args = ["predict", str(data / "images"), "--weights", str(tiny_ckpt), "--out", str(tmp_path / out), "--exist-ok"]
    one_error_line(runner.invoke(app, args), "inside the input folder")
    assert snapshot(tmp_path) == before


def test_names_equal_but_for_case_or_suffix_get_a_mask_each(tiny_ckpt, tmp_path):
    """x.png beside x.PNG, and a.png, a.jpg beside a_png.png, mapped to one output name: a mask was lost."""
    src = tmp_path / "src"
    names = ["x.png", "x.PNG", "a.png", "a.jpg", "a_png.png"]
    for i, name in enumerate(names):
        image(src / name, 8 + i, 8)  # its height says which input a mask came from
    ok(runner.invoke(app, ["predict", str(src), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "p")]))
    outputs = json.loads((tmp_path / "p" / "predictions.json").read_text())["outputs"]
    assert sorted(Path(o["source"]).name for o in outputs) == sorted(names)
    assert len({name_key(o["mask"]) for o in outputs}) == len(names) == len(list((tmp_path / "p/masks").iterdir()))
    for o in outputs:
        assert Image.open(o["mask"]).size[1] == 8 + names.index(Path(o["source"]).name)


def test_an_interrupted_predict_records_what_it_wrote(tiny_ckpt, tmp_path, monkeypatch):
    """Ctrl-C (and SIGTERM, which the CLI turns into one) in the middle: predictions.json lists what was written."""
    from distilkit.engine.predictor import Predictor

    for i in range(4):
        image(tmp_path / "src" / f"{i}.png")
    calls, real = [], Predictor.__call__

    def interrupted_at_the_third_batch(self, frames):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, frames)

    monkeypatch.setattr(Predictor, "__call__", interrupted_at_the_third_batch)
    args = ["predict", str(tmp_path / "src"), "--weights", str(tiny_ckpt), "--out", str(tmp_path / "p"), "--batch", "1"]
    assert runner.invoke(app, args).exit_code == 130
    summary = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert summary["interrupted"] and summary["count"] == len(summary["outputs"]) == 2
    assert all(Path(o["mask"]).is_file() for o in summary["outputs"])
    monkeypatch.setattr(Predictor, "__call__", real)
    one_error_line(runner.invoke(app, args), "already holds files")  # what it wrote is kept, not replaced


def test_a_resumed_run_rewrites_its_own_files(tiny_data, tmp_path):
    run = tmp_path / "run"
    train = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "fastlitessnet",
             "--iters", "1", "--val-every", "1", "--val-limit", "1", *TINY, "--out", str(run)]  # fmt: skip
    ok(runner.invoke(app, train))
    stamp = (run / "loss_curve.png").stat().st_mtime_ns
    ok(runner.invoke(app, ["train-teacher", "--resume", str(run)]))  # the resumed run redraws loss_curve.png
    assert (run / "loss_curve.png").stat().st_mtime_ns != stamp


# ---- generated file names ----------------------------------------------------------------------------------------

LETTERS = "aAbBxXéÉßİı_-.0"
stems = st.text(alphabet=LETTERS, min_size=1, max_size=4).filter(lambda s: s.strip(".") and s not in (".", ".."))
suffixes = st.sampled_from(sorted(IMAGE_SUFFIXES)).flatmap(lambda s: st.sampled_from([s, s.upper()]))
file_names = st.lists(st.tuples(stems, suffixes).map("".join), min_size=1, max_size=6, unique=True)


@given(names=file_names)
@settings(max_examples=300, deadline=None, derandomize=True)
def test_output_names_are_unique_case_insensitively(names):
    out = output_names([Path("/data") / n for n in names])
    assert len({name_key(n) for n in out}) == len(names)
    assert out == output_names([Path("/data") / n for n in names])  # the same inputs, the same names


@given(names=file_names, where=st.sampled_from(["new", "old", "source"]))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
def test_predict_changes_no_file_that_was_there(tiny_ckpt, names, where):
    """Images under generated names in a folder that also holds the user's other files: predicted into a new
    folder inside it, each image gets its own mask; into a folder of it that held files, or into itself
    (--exist-ok), it is refused. Either way every file that was there keeps its bytes and its time."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        for i, name in enumerate(names):
            image(src / name, 8 + i, 8)
        (src / "old" / "masks").mkdir(parents=True)
        (src / "old" / "masks" / "notes.txt").write_text("the user's")
        before = snapshot(src)
        out = {"new": src / "new", "old": src / "old", "source": src}[where]
        args = ["predict", str(src), "--weights", str(tiny_ckpt), "--out", str(out), "--batch", "8"]
        result = runner.invoke(app, [*args, *(["--exist-ok"] if where != "new" else [])])
        after = snapshot(src)
        assert {k: v for k, v in after.items() if k in before} == before
        if where != "new":
            one_error_line(result, "inside the input folder")
            assert after == before
            return
        ok(result)
        outputs = json.loads((out / "predictions.json").read_text())["outputs"]
        assert sorted(Path(o["source"]).name for o in outputs) == sorted(names)
        assert len({name_key(o["mask"]) for o in outputs}) == len(names) == len(list((out / "masks").rglob("*.png")))
        for o in outputs:
            assert Image.open(o["mask"]).size[1] == 8 + names.index(Path(o["source"]).name)


def test_a_failed_write_names_the_file_asked_for_not_its_temp_file(tmp_path):
    """atomic_write writes a hidden temp file beside the target: an error on it (or on making it) names the
    target, the path the user gave."""
    from distilkit.utils.files import atomic_write

    target = tmp_path / "nowhere" / "x.onnx"
    (tmp_path / "nowhere").write_text("a file where the folder should be")

    def write(p: Path) -> None:
        raise AssertionError("never reached: the temp file cannot be made")

    with pytest.raises(OSError) as caught:
        atomic_write(target, write)
    assert caught.value.filename == str(target)

    def fails(p: Path) -> None:
        raise PermissionError(13, "Permission denied", str(p))

    with pytest.raises(PermissionError) as caught:
        atomic_write(tmp_path / "y.onnx", fails)
    assert caught.value.filename == str(tmp_path / "y.onnx")
