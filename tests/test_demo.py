"""`distilkit demo` and the comparison under it (distilkit/engine/uda_compare.py, also benchmarks/duda.py's):
source-only models, the equal-step control and DUDA, scored on the target; tiny settings here."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app, demo
from distilkit.engine.checkpoint import read_meta
from distilkit.engine.uda_compare import UdaComparison, run_comparison

runner = CliRunner()
TINY = dict(src="synth-gta", tgt="synth-city", large="fastlitessnet", small="fastlitessnet", imgsz=(32, 64),
            source_iters=2, source_batch=2, duda_iters=2, stage3_iters=1, duda_batch=2, lr=6e-4, head_lr_mult=1.0,
            duda_args={"inconsistency_images": 2}, val_limit=2, workers=0, device="cpu")  # fmt: skip


def test_the_control_gets_as_many_steps_as_duda_and_source_models_are_reused(tmp_path):
    c = UdaComparison(**TINY, out=tmp_path)
    r = run_comparison(c)
    for key in ("teacher_source_only", "student_source_only", "student_continued", "duda_student", "duda_teacher"):
        assert 0 <= r[key] <= 1
    steps = read_meta(tmp_path / "student-continued" / "weights" / "last.safetensors")["metrics"]["step"]
    assert steps == c.duda_iters + c.stage3_iters  # what DUDA gives the small student: 2 + 1
    assert read_meta(r["deployed"])["metrics"]["step"] == c.duda_iters + c.stage3_iters
    assert [s["network"] for s in r["stages"] if "miou" in s] == ["large teacher LT", "large student LS",
                                                                   "small student SS"]  # fmt: skip
    again = run_comparison(c)  # the same experiment: every arm reused, DUDA with the stage table it recorded
    assert all(math.isnan(again["times_s"][k]) for k in ("teacher", "student", "student-continued"))
    assert again["student_source_only"] == r["student_source_only"]
    assert again["times_s"]["duda"] == r["times_s"]["duda"] and again["stages"] == r["stages"]
    assert again["duda_student"] == r["duda_student"] and again["duda_teacher"] == r["duda_teacher"]
    other = run_comparison(UdaComparison(**{**TINY, "duda_args": {"inconsistency_images": 1}}, out=tmp_path))
    assert other["times_s"]["duda"] != r["times_s"]["duda"]  # another DUDA experiment is trained, not reused


def test_the_target_kd_control_trains_the_small_model_for_dudas_steps_from_the_large_source_model(tmp_path):
    c = UdaComparison(**{**TINY, "duda_iters": 1, "stage3_iters": 1}, out=tmp_path, kd_control=True)
    r = run_comparison(c)
    assert 0 <= r["student_target_kd"] <= 1 and not math.isnan(r["times_s"]["target-kd"])
    run = tmp_path / "student-target-kd"
    assert read_meta(run / "weights" / "last.safetensors")["metrics"]["step"] == c.adapt_iters
    args = json.loads((run / "args.json").read_text())
    assert args["method"] == "target-kd" and args["method_args"]["teacher"].endswith(
        "teacher-source/weights/last.safetensors"
    )
    assert not (run / "weights" / "teacher.safetensors").exists()  # LT is the large source model, unchanged


def test_seeds_share_the_large_source_model_and_train_their_own_small_ones(tmp_path):
    """benchmarks/duda.py --seeds: the large model is trained once, at `large_seed`, and seed 1 reuses it even
    without `reuse` (it is not that seed's to retrain); the small source model is trained per seed."""
    quick = {**TINY, "duda_iters": 1, "stage3_iters": 1, "reuse": False, "large_seed": 0}
    first = run_comparison(UdaComparison(**quick, out=tmp_path, seed=0, suffix="-s0"))
    second = run_comparison(UdaComparison(**quick, out=tmp_path, seed=1, suffix="-s1"))
    assert sorted(p.name for p in tmp_path.glob("teacher-source*")) == ["teacher-source-s0"]
    assert json.loads((tmp_path / "teacher-source-s0" / "args.json").read_text())["seed"] == 0
    assert math.isnan(second["times_s"]["teacher"]) and not math.isnan(second["times_s"]["student"])
    assert second["teacher_source_only"] == first["teacher_source_only"]
    assert json.loads((tmp_path / "student-source-s1" / "args.json").read_text())["seed"] == 1


def test_demo_prints_duda_beside_source_only_and_the_control(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "DEMO", {k: v for k, v in TINY.items() if k not in ("workers", "device")})
    result = ok(runner.invoke(app, ["demo", "--device", "cpu", "--out", str(tmp_path / "d")]))
    assert "equal-step control" in result.output and "over source only" in result.output
    saved = json.loads((tmp_path / "d" / "demo.json").read_text())
    assert {"student_source_only", "student_continued", "duda_student", "wall_s"} <= set(saved)


@pytest.mark.parametrize(("argv", "message"), [(["--device", "cuda:7"], "cuda"), (["--workers", "-1"], "--workers")])
def test_demo_bad_input_is_one_line(argv, message, tmp_path):
    one_error_line(runner.invoke(app, ["demo", *argv, "--out", str(tmp_path / "d")]), message)


def test_demo_never_writes_into_a_used_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "mine.txt").write_text("keep")
    one_error_line(runner.invoke(app, ["demo", "--out", str(tmp_path / "d")]), "already holds files")
    assert (tmp_path / "d" / "mine.txt").read_text() == "keep"
