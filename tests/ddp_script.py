"""Run under torchrun (or alone) by tests/test_distributed.py; writes what each rank saw under OUT.

python tests/ddp_script.py bn OUT                  # CPUSyncBatchNorm on this rank's half of a batch
python tests/ddp_script.py train OUT DATA METHOD [TEACHER]   # a short run of a global batch of 4
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from distilkit.engine import distributed as ddp


def sync_bn(out: Path) -> None:
    ddp.init_from_env(torch.device("cpu"))
    r = ddp.rank()
    g = torch.Generator().manual_seed(0)
    x, coef = torch.randn(4, 3, 5, 6, generator=g) * 3 + 1, torch.randn(4, 3, 5, 6, generator=g)
    bn = ddp.CPUSyncBatchNorm(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.0, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    xr = x[2 * r : 2 * r + 2].clone().requires_grad_()
    y = bn(xr)
    (y * coef[2 * r : 2 * r + 2]).sum().backward()
    torch.save({"y": y.detach(), "x_grad": xr.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
                "running_mean": bn.running_mean, "running_var": bn.running_var}, out / f"bn{r}.pt")  # fmt: skip


def train(out: Path, data: str, method: str, teacher: str | None) -> None:
    from distilkit.engine.config import TrainConfig
    from distilkit.engine.trainer import run_training

    world = int(os.environ.get("WORLD_SIZE", "1"))
    model, model_args, method_args = "unet-resnet18", {}, {}
    if method != "supervised":
        model, model_args = "fastlitessnet", {"width": 0.25}
        method_args = {"teacher": teacher, **({"epochs": 4, "ratio": 0.5} if method == "sakd" else {})}
    if method == "duda":
        method_args = {"tgt": "folder", "stage1_iters": 3, "stage3_iters": 3, "teacher_model": "segformer-b0",
                       "inconsistency_images": 2}  # fmt: skip
    cfg = TrainConfig(data="folder", data_root=data, model=model, model_args=model_args, imgsz=(64, 128),
                      batch=4 // world, iters=6, val_every=3, warmup=2, workers=0, device="cpu", lr=1e-3,
                      log_every=1, method=method, method_args=method_args)  # fmt: skip
    _, run_dir, m = run_training(cfg, out=out / "run", exist_ok=True)
    checksums = {  # every network (students, adapters, EMA teachers) must be the same on every rank
        name: sum(float(t.double().sum()) for t in net.state_dict().values() if t.is_floating_point())
        for name, net in m.networks().items()
    }
    seen = {"selections": getattr(m, "selections", None), "run_dir": str(run_dir), "checksums": checksums}
    (out / f"rank{ddp.rank()}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, target = sys.argv[1], Path(sys.argv[2])
    if mode == "bn":
        sync_bn(target)
    else:
        train(target, sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
