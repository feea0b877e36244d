"""The CLI end to end: train-teacher then evaluate, help speed, and one clear error line for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from distilkit.cli import app

runner = CliRunner()
TINY = ["--imgsz", "64", "128", "--batch", "2", "--workers", "0", "--device", "cpu"]


def test_help_imports_no_torch():
    # --help stays fast because the CLI never imports torch (not timed here: timings belong in benchmarks/)
    code = "import sys, distilkit.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    commands = ([], ["train-teacher"], ["evaluate"], ["predict"], ["fps"], ["export-onnx"], ["models"], ["datasets"],
                *(["distill", m] for m in ("duda", "sdd", "hdl", "sakd", "cwd")))  # fmt: skip
    for args in commands:
        out = subprocess.run([sys.executable, "-m", "distilkit", *args, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "Usage" in out.stdout, args


def test_duda_help_shows_what_each_preset_sets():
    from distilkit.cli.distill import DUDA_PRESETS

    out = subprocess.run([sys.executable, "-m", "distilkit", "distill", "duda", "--help"], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "200"}).stdout  # fmt: skip
    paper, cpu = DUDA_PRESETS["paper"], DUDA_PRESETS["cpu"]
    assert f"Pre-adaptation iterations. (by --preset: paper {paper['stage1']}, cpu {cpu['stage1']})" in out
    assert f"(by --preset: paper {paper['teacher_model']}, cpu {cpu['teacher_model']})" in out
    assert "Base learning rate (AdamW). (by --preset: paper 6e-05, cpu 0.0006)" in out


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("distilkit ")


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "run"
    args = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "segformer-b0"]
    args += ["--style", "fda", "--style-target", "folder"]  # source restyled by target images (FDA)
    args += ["--hue", "0.5", "--grey", "0.3"]  # domain-randomised colours
    result = runner.invoke(app, [*args, "--iters", "4", "--val-every", "2", "--warmup", "1", *TINY, "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert "mIoU" in result.stdout
    return run


def test_train_teacher_writes_a_complete_run(trained):
    for name in ("args.json", "metrics.csv", "loss_curve.png", "results.json", "results.csv", "per_class_iou.png"):
        assert (trained / name).is_file(), name
    for name in ("best.safetensors", "last.safetensors", "last.state.pt"):
        assert (trained / "weights" / name).is_file(), name
    rows = (trained / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and "val_miou" in rows[0] and len(rows) >= 4
    assert json.loads((trained / "args.json").read_text())["method_args"]["aug"] == {
        "jitter": 0.2,
        "hue": 0.5,
        "grey": 0.3,
    }


@pytest.mark.parametrize("flag", [["--hue", "0.7"], ["--grey", "1.5"], ["--jitter", "-0.1"]])
def test_augmentation_out_of_range_is_one_error_line(flag, tmp_path):
    for command in (["train-teacher"], ["distill", "duda"], ["distill", "sdd", "--teacher", "t.safetensors"]):
        result = runner.invoke(app, [*command, *flag, "--out", str(tmp_path / "run")])
        expected = f"error: {flag[0]} {flag[1]}: expected a number"
        assert result.exit_code == 1 and expected in result.output, result.output
        assert "Traceback" not in result.output and not (tmp_path / "run").exists()


def test_evaluate_end_to_end(trained, tiny_data, tmp_path):
    ckpt = trained / "weights" / "best.safetensors"
    for mode in ("whole", "slide"):
        out = tmp_path / mode
        result = runner.invoke(
            app, ["evaluate", str(ckpt), "--data-root", str(tiny_data), "--mode", mode, "--out", str(out), *TINY[3:]]
        )
        assert result.exit_code == 0, result.output
        results = json.loads((out / "results.json").read_text())
        assert 0 <= results["miou"] <= 1 and results["images"] == 3 and "road" in results["per_class"]
        assert (out / "results.csv").is_file() and (out / "per_class_iou.png").is_file()


def test_resume_via_cli_finishes_a_finished_run(trained):
    result = runner.invoke(app, ["train-teacher", "--resume", str(trained)])
    assert result.exit_code == 0, result.output
    assert "resuming" in result.stdout


def test_models_and_datasets_list_the_registries():
    from distilkit.data.registry import dataset_names
    from distilkit.models import model_names

    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in model_names():
        assert name in result.stdout
    line = next(ln for ln in result.stdout.splitlines() if "fpn-efficientnet-lite0" in ln)
    assert "offline" in line  # the packaged ImageNet weights
    assert "download" in next(ln for ln in result.stdout.splitlines() if "segformer-b0" in ln)
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0 and all(name in result.stdout for name in dataset_names())
