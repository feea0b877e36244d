"""--config FILE on every command: precedence, refusal of bad keys and types, and config.yaml round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app

runner = CliRunner()
TINY = {"data": "folder", "model": "fastlitessnet", "iters": 2, "val_every": 2, "imgsz": [64, 128], "batch": 2,
        "workers": 0, "device": "cpu"}  # fmt: skip


def test_flags_override_the_file_and_the_file_overrides_defaults(tiny_data, tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**TINY, "lr": 0.002, "data-root": str(tiny_data)}))
    ok(runner.invoke(app, ["train-teacher", "--config", str(tmp_path / "c.yaml"), "--iters", "1",
                           "--out", str(tmp_path / "r")]))  # fmt: skip
    args = json.loads((tmp_path / "r/args.json").read_text())
    assert (
        args["iters"] == 1 and args["lr"] == 0.002 and args["imgsz"] == [64, 128] and args["model"] == "fastlitessnet"
    )
    saved = yaml.safe_load((tmp_path / "r/config.yaml").read_text())
    assert saved["iters"] == 1 and saved["lr"] == 0.002 and saved["warmup"] == 100  # defaults included
    assert "out" not in saved and "config" not in saved


@pytest.mark.parametrize(
    ("content", "words"),
    [({"itres": 3}, "unknown option 'itres'"), ({"iters": "many"}, "'iters'"), ([1, 2], "expected a mapping"),
     ("iters: [unclosed", "not valid YAML")],
)  # fmt: skip
def test_bad_config_files_are_one_line(content, words, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    one_error_line(runner.invoke(app, ["train-teacher", "--config", str(path)]), words)
    assert not (tmp_path / "runs").exists()


def test_a_runs_config_yaml_reruns_it_bitwise(tiny_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.json").write_text(json.dumps({**TINY, "data_root": str(tiny_data)}))  # JSON reads as YAML
    ok(runner.invoke(app, ["train-teacher", "--config", str(tmp_path / "c.json")]))
    first = tmp_path / "runs/train-teacher/exp"
    ok(runner.invoke(app, ["train-teacher", "--config", str(first / "config.yaml")]))
    second = tmp_path / "runs/train-teacher/exp2"
    a, b = (load_file(str(d / "weights/last.safetensors")) for d in (first, second))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_command_with_options_takes_config():
    for argv in (
        ["train-teacher"],
        ["evaluate"],
        ["predict"],
        ["fps"],
        ["export-onnx"],
        ["compare"],
        ["distill", "duda"],
        ["distill", "sakd"],
        ["distill", "hdl"],
        ["distill", "sdd"],
        ["distill", "cwd"],
    ):
        assert "--config" in runner.invoke(app, [*argv, "--help"]).stdout, argv  # fmt: skip
    for argv in (["evaluate"], ["predict"], ["export-onnx"]):  # the wrapper keeps positional arguments and help
        shown = runner.invoke(app, [*argv, "--help"]).stdout
        assert "Arguments" in shown, argv


def test_the_example_configs_name_only_options_of_their_commands():
    """Each examples/configs file says its command on its first line; every key must be one of its options."""
    import typer

    from distilkit.cli.options import read_config

    root = typer.main.get_command(app)
    files = sorted((Path(__file__).resolve().parents[1] / "examples/configs").glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        words = path.read_text().splitlines()[0].lstrip("# ").split()
        cmd = root
        for w in words[1:]:
            if w.startswith("--"):
                break
            cmd = cmd.commands[w]
        names = {p.name for p in cmd.params}
        assert set(k.replace("-", "_") for k in read_config(path)) <= names, path.name
