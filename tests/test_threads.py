"""--threads and the default thread count: the cores left after the data-loading workers, never OpenMP's
every-core default that oversubscribes a small CPU (docs/benchmarks.md, benchmarks/threads.py)."""

from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from conftest import ok, one_error_line
from distilkit.cli import app
from distilkit.utils import device

runner = CliRunner()


@pytest.fixture(autouse=True)
def _keep_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setattr(device, "cpu_cores", lambda: 3)  # CLI runs below: real thread counts, at most the cores
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("threads", "reserved", "env", "expected"),
    [(3, 2, {}, 3),  # asked for: as asked, workers or not
     (None, 0, {}, 8), (None, 2, {}, 6), (None, 9, {}, 1),  # the cores left after the workers, at least one
     (None, 2, {"OMP_NUM_THREADS": "5"}, 5),  # the user's environment wins over the default
     (None, 2, {"OMP_NUM_THREADS": "junk"}, 6),
     (None, 1, {"LOCAL_WORLD_SIZE": "2"}, 3)],  # torchrun's processes on one machine share its cores
)  # fmt: skip
def test_thread_count(threads, reserved, env, expected, monkeypatch):
    """The arithmetic on an 8-core machine; torch's pool is not resized to counts this CPU does not have."""
    monkeypatch.setattr(device, "cpu_cores", lambda: 8)
    pool = [torch.get_num_threads()]
    monkeypatch.setattr(torch, "get_num_threads", lambda: pool[-1])
    monkeypatch.setattr(torch, "set_num_threads", pool.append)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert device.set_threads(threads, reserved) == expected
    assert pool[-1] == expected


def test_an_equal_thread_count_leaves_the_pool_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    device.set_threads(torch.get_num_threads())
    assert calls == []


def train(data, *flags: str) -> list[str]:
    return ["train-teacher", "--data", "folder", "--data-root", str(data), "--model", "fastlitessnet", "--iters", "1",
            "--val-every", "1", "--imgsz", "64", "128", "--batch", "2", "--device", "cpu", *flags]  # fmt: skip


def test_the_threads_option_is_applied_and_recorded(tiny_data, tmp_path):
    ok(runner.invoke(app, train(tiny_data, "--workers", "0", "--threads", "1", "--out", str(tmp_path / "r"))))
    assert torch.get_num_threads() == 1
    assert yaml.safe_load((tmp_path / "r/config.yaml").read_text())["threads"] == 1


def test_threads_default_leaves_the_workers_their_cores(tmp_path):
    """Set before the command runs, so a command that then fails on its input shows it without forking data
    loader workers in the test process (forking there after the pool was resized crashed the suite twice)."""
    torch.set_num_threads(2)
    missing = tmp_path / "none.safetensors"
    one_error_line(runner.invoke(app, ["evaluate", str(missing), "--workers", "2"]), "none.safetensors")
    assert torch.get_num_threads() == 1  # 3 cores - 2 workers, not OpenMP's every core


@pytest.mark.parametrize("argv", [["fps"], ["evaluate"], ["predict", "x.png"], ["export-onnx", "m.safetensors"],
                                  ["distill", "sdd"], ["compare", "--teacher", "t", "--data", "camvid"]])  # fmt: skip
def test_zero_threads_is_one_line_on_every_command(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_error_line(runner.invoke(app, [*argv, "--threads", "0"]), "--threads 0: expected >= 1")
    assert not (tmp_path / "runs").exists()


def test_exported_models_use_the_same_thread_count(tiny_ckpt, tmp_path):
    from distilkit.engine.predictor import OnnxModel

    onnx_file = tmp_path / "m.onnx"
    ok(runner.invoke(app, ["export-onnx", str(tiny_ckpt), "--out", str(onnx_file)]))
    device.set_threads(2)
    assert OnnxModel(onnx_file, torch.device("cpu")).session.get_session_options().intra_op_num_threads == 2
