"""torchrun data parallelism on the CPU (gloo, 2 processes): sync batch norm, sharded batches that add up
to a single process's global batch, identical networks and selections on every rank, one writer."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("ddp_script.py")


def torchrun(*args: str, cwd: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def single(*args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(run: Path) -> list[tuple[int, float]]:
    with open(run / "metrics.csv") as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f) if r.get("loss")]


def test_sync_batchnorm_equals_batchnorm_on_the_global_batch(tmp_path):
    """Each rank normalises its half of a batch; outputs, gradients and running statistics must be those of
    plain BatchNorm2d on the whole batch (parameter gradients: the sum over ranks, before averaging)."""
    torchrun(str(SCRIPT), "bn", str(tmp_path), cwd=tmp_path)
    r = [torch.load(tmp_path / f"bn{i}.pt", weights_only=True) for i in range(2)]
    g = torch.Generator().manual_seed(0)
    x, coef = torch.randn(4, 3, 5, 6, generator=g) * 3 + 1, torch.randn(4, 3, 5, 6, generator=g)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    x.requires_grad_()
    y = bn(x)
    (y * coef).sum().backward()
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r[0]["y"], r[1]["y"]]), y.detach(), **close)
    torch.testing.assert_close(torch.cat([r[0]["x_grad"], r[1]["x_grad"]]), x.grad, **close)
    torch.testing.assert_close(r[0]["w_grad"] + r[1]["w_grad"], bn.weight.grad, **close)
    torch.testing.assert_close(r[0]["b_grad"] + r[1]["b_grad"], bn.bias.grad, **close)
    for i in range(2):
        torch.testing.assert_close(r[i]["running_mean"], bn.running_mean, **close)
        torch.testing.assert_close(r[i]["running_var"], bn.running_var, **close)


@pytest.mark.parametrize("method", ["supervised", "sakd"])
def test_two_processes_match_one_with_the_same_global_batch(method, tiny_data, tiny_ckpt, tmp_path):
    """unet-resnet18 (batch norm -> sync batch norm) and SAKD over a FastLiteSSNet student (DPP selection):
    2 ranks x batch 2 against 1 process x batch 4, same seed. The loss curves agree (CE is averaged per rank,
    as DDP does, so not bitwise), SAKD selects the same images, and only one run directory is written."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    args = [str(tiny_data), method, str(tiny_ckpt)]
    single("train", str(one), *args, cwd=tmp_path)
    torchrun(str(SCRIPT), "train", str(two), *args, cwd=tmp_path)
    a, b = losses(one / "run"), losses(two / "run")
    assert [s for s, _ in a] == [s for s, _ in b] == list(range(1, len(a) + 1)) and len(a) >= 3
    for (_, la), (_, lb) in zip(a, b, strict=True):
        assert abs(la - lb) <= 0.02 * abs(la), (a, b)
    ranks = [json.loads((two / f"rank{i}.json").read_text()) for i in range(2)]
    assert ranks[0]["checksums"] == ranks[1]["checksums"]
    if method == "sakd":
        solo = json.loads((one / "rank0.json").read_text())
        assert ranks[0]["selections"] == ranks[1]["selections"] == solo["selections"]
    written = sorted(p.relative_to(two).as_posix() for p in two.rglob("*") if p.is_file())
    assert [p for p in written if p.endswith(".safetensors")] == ["run/weights/best.safetensors",
                                                                  "run/weights/last.safetensors"]  # fmt: skip
    assert not any(p.endswith(".tmp") for p in written)


@pytest.mark.parametrize("method", ["duda", "hdl", "sdd"])
def test_every_distill_method_runs_under_torchrun(method, tiny_data, tiny_ckpt, tmp_path):
    """Each rank ends with the same networks (DUDA's EMA teacher included); rank 0 writes one checkpoint set."""
    torchrun(str(SCRIPT), "train", str(tmp_path), str(tiny_data), method, str(tiny_ckpt), cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert ranks[0]["checksums"] == ranks[1]["checksums"]
    if method == "duda":
        assert {"lt", "ls", "ss"} <= ranks[0]["checksums"].keys()
        assert (tmp_path / "run/weights/teacher.safetensors").is_file()
    assert (tmp_path / "run/weights/last.safetensors").is_file()


def test_torchrun_module_cli_writes_one_run(tiny_data, tmp_path):
    """`torchrun ... -m distilkit train-teacher`: one run directory, one set of checkpoints, rank 0's table."""
    done = torchrun("-m", "distilkit", "train-teacher", "--data", "folder", "--data-root", str(tiny_data),
                    "--model", "unet-resnet18", "--iters", "2", "--batch", "1", "--imgsz", "64", "128",
                    "--val-every", "2", "--workers", "0", "--device", "cpu", cwd=tmp_path)  # fmt: skip
    assert [p.name for p in (tmp_path / "runs" / "train-teacher").iterdir()] == ["exp"]
    weights = sorted(p.name for p in (tmp_path / "runs/train-teacher/exp/weights").iterdir())
    assert weights == ["best.safetensors", "last.safetensors", "last.state.pt"]
    assert done.stdout.count("final") == 1 and done.stdout.count("run directory") == 1  # rank 0 speaks


def test_world_size_without_torchrun_is_one_error_line(tiny_data, tmp_path):
    """WORLD_SIZE set by hand, without torchrun's MASTER_ADDR/PORT: one error line naming torchrun, no traceback."""
    from typer.testing import CliRunner

    from conftest import one_error_line
    from distilkit.cli import app

    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": None, "MASTER_PORT": None}
    args = ["train-teacher", "--data", "folder", "--data-root", str(tiny_data), "--model", "unet-resnet18",
            "--iters", "1", "--batch", "1", "--imgsz", "64", "128", "--workers", "0", "--device", "cpu",
            "--out", str(tmp_path / "runs")]  # fmt: skip
    one_error_line(CliRunner().invoke(app, args, env=env), "start with torchrun")
