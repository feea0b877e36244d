"""`distilkit compare`: arms over seeds, reused once finished, and a table computed from the runs' own results."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app
from distilkit.engine.checkpoint import read_meta
from distilkit.engine.compare import named_defaults, summarise
from distilkit.engine.config import TrainConfig, same_experiment

runner = CliRunner()


def test_compare_two_methods_two_seeds_from_the_runs_own_results(tiny_data, tiny_ckpt, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", "--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data),
            "--student", "fastlitessnet", "--methods", "kd", "--methods", "cwd", "--seeds", "0", "--seeds", "1",
            "--iters", "2", "--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu",
            "--out", str(out)]  # fmt: skip
    result = ok(runner.invoke(app, args))
    assert "vs alone" in result.stdout
    report = json.loads((out / "compare.json").read_text())
    arms = {e["arm"]: e for e in report["arms"]}
    assert list(arms) == ["alone", "kd", "cwd"] and all(e["seeds"] == [0, 1] for e in arms.values())
    # every figure is the final metric its own checkpoint records
    for name, e in arms.items():
        own = [100 * read_meta(out / "arms" / f"{name}-s{s}" / "weights/last.safetensors")["metrics"]["miou"]
               for s in (0, 1)]  # fmt: skip
        assert e["miou"] == pytest.approx(own)
        assert e["mean"] == pytest.approx(statistics.mean(own))
    diffs = [k - a for k, a in zip(arms["kd"]["miou"], arms["alone"]["miou"], strict=True)]
    assert arms["kd"]["diff_mean"] == pytest.approx(statistics.mean(diffs))
    assert arms["kd"]["diff_std"] == pytest.approx(statistics.stdev(diffs))
    assert (out / "compare.csv").read_text().splitlines()[0].startswith("arm,seeds,mean,std")
    assert (out / "compare.png").is_file()
    # a second run into the same folder is refused without --exist-ok (compare.json is not replaced), and
    # with it reuses every finished arm: nothing trains again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("arms/*/weights/last.safetensors")}
    one_error_line(runner.invoke(app, args), "already holds files")
    ok(runner.invoke(app, [*args, "--exist-ok"]))
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_compare_sweeps_one_option_and_refuses_bad_lists(tiny_data, tiny_ckpt, tmp_path):
    base = ["compare", "--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data),
            "--student", "fastlitessnet", "--iters", "1", "--imgsz", "64", "128", "--batch", "2", "--workers", "0",
            "--device", "cpu", "--seeds", "0"]  # fmt: skip
    ok(runner.invoke(app, [*base, "--methods", "kd", "--sweep", "kd_weight=0.5,2", "--out", str(tmp_path / "s")]))
    arms = [e["arm"] for e in json.loads((tmp_path / "s/compare.json").read_text())["arms"]]
    assert arms == ["alone", "kd[kd_weight=0.5]", "kd[kd_weight=2]"]
    args = json.loads((tmp_path / "s/arms/kd[kd_weight=2]-s0/args.json").read_text())
    assert args["method_args"]["kd_weight"] == 2.0
    assert args["method_args"]["temperature"] == 1.0  # pixel KD's default (CIRKD's), recorded with the run
    one_error_line(runner.invoke(app, [*base, "--methods", "mse", "--out", str(tmp_path / "b")]), "--methods mse")
    one_error_line(runner.invoke(app, [*base, "--sweep", "kd_weight", "--out", str(tmp_path / "b")]), "--sweep")
    one_error_line(runner.invoke(app, [*base, "--seeds", "0", "--out", str(tmp_path / "b")]), "each seed once")
    assert not (tmp_path / "b").exists()


def test_summary_pairs_differences_by_seed():
    rows = [{"arm": a, "seed": s, "miou": m, "train_s": 1.0, "iters": 2, "checkpoint": ""}
            for a, s, m in [("alone", 0, 50), ("alone", 1, 54), ("kd", 0, 52), ("kd", 1, 55)]]  # fmt: skip
    kd = summarise(rows)[1]
    assert kd["diff_mean"] == pytest.approx(1.5) and kd["diff_std"] == pytest.approx(statistics.stdev([2, 1]))
    assert kd["std"] == pytest.approx(statistics.stdev([52, 55]))


def test_arms_are_paired_a_zero_weight_method_is_the_student_alone(tiny_data, tiny_ckpt, tmp_path):
    # the same seed gives every arm the same student init and data order; loading the teacher must not move the
    # RNG (it did: the KD arms' students started elsewhere than the alone arm's). With its weight at 0 pixel KD
    # adds nothing, so its student must come out bitwise the student alone's.
    from safetensors.torch import load_file

    args = ["compare", "--teacher", str(tiny_ckpt), "--data", "folder", "--data-root", str(tiny_data),
            "--student", "fastlitessnet", "--methods", "kd", "--sweep", "kd_weight=0,1", "--seeds", "3",
            "--iters", "3", "--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu",
            "--out", str(tmp_path / "p")]  # fmt: skip
    ok(runner.invoke(app, args))
    weights = {arm: load_file(tmp_path / "p/arms" / f"{arm}-s3/weights/last.safetensors")
               for arm in ("alone", "kd[kd_weight=0]", "kd[kd_weight=1]")}  # fmt: skip
    alone = weights["alone"]
    assert all(torch.equal(alone[k], v) for k, v in weights["kd[kd_weight=0]"].items())
    assert not all(torch.equal(alone[k], v) for k, v in weights["kd[kd_weight=1]"].items())  # KD does move it


def test_a_run_of_pixel_kds_old_default_temperature_is_never_reused_as_the_new_default():
    # until 2026-12-07 pixel KD ran at T = 4 without recording it; a request names the temperature, so such a
    # run (or a recorded result of it) no longer counts as the default's
    wanted = TrainConfig(method="kd", method_args=named_defaults("kd", {"teacher": "t.safetensors"}))
    assert wanted.method_args == {"temperature": 1.0, "teacher": "t.safetensors"}
    before = TrainConfig(method="kd", method_args={"teacher": "t.safetensors"})
    after = TrainConfig(method="kd", method_args={"teacher": "t.safetensors", "temperature": 1.0, "kd_weight": 1.0})
    assert not same_experiment(before, wanted) and same_experiment(after, wanted)
    assert named_defaults("kd", {"temperature": 4.0})["temperature"] == 4.0  # a variant keeps its own
    assert named_defaults("cwd", {"tau": 1.0}) == {"tau": 1.0}
