"""Data-parallel training across processes and machines with torch.distributed, started by torchrun.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK. Every rank builds the same method from the same seed, takes
its shard of each global batch (`data.loader.SeededStream`), and gradients are averaged with one all-reduce
per step (gloo on the CPU, NCCL on CUDA) before the optimiser steps, so the ranks' weights, EMA teachers
and sample selections stay identical. Rank 0 alone writes the run directory, checkpoints and logs.

Why not wrap networks in DistributedDataParallel: a method trains several networks through its own forward
calls (students, adapters, EMA teachers); averaging the gradients of the optimiser's parameters after the
backward pass is the same arithmetic for all of them, without changing any method.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn

from distilkit.errors import DistilkitError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    """Whether this process writes files and prints (rank 0, or the only process)."""
    return rank() == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (if any); returns this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return device
    if not dist.is_available():
        raise DistilkitError("torchrun started several processes but this torch has no torch.distributed")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    try:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    except (ValueError, RuntimeError) as e:  # WORLD_SIZE set by hand without torchrun's other variables
        raise DistilkitError(f"could not join the process group WORLD_SIZE describes ({e}); start with torchrun") from e
    atexit.register(_leave)
    if not is_main():
        from distilkit.utils.console import console, err_console

        console.quiet = err_console.quiet = True  # one voice: rank 0's
    return device


def _leave() -> None:
    """Tear the process group down before the interpreter does, as torch asks, so no communicator is still
    alive during interpreter teardown (a suspect in a gloo rank's abort at exit seen once in CI)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj):
    """Rank 0's `obj` on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj) -> list:
    """Every rank's `obj`, in rank order."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def broadcast_modules(modules) -> None:
    """Rank 0's parameters and buffers everywhere (as DDP does at start), whatever each rank initialised."""
    if world_size() == 1:
        return
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[torch.Tensor]) -> None:
    """grad <- mean over ranks, in one flat all-reduce. A parameter no rank gave a gradient keeps None."""
    n = world_size()
    if n == 1 or not params:
        return
    device = params[0].device
    has = torch.tensor([float(p.grad is not None) for p in params], device=device)
    flat = torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float() for p in params] + [has]
    )
    dist.all_reduce(flat)
    flat /= n
    offset = 0
    for p, present in zip(params, flat[-len(params) :].tolist(), strict=True):
        k = p.numel()
        if present > 0:  # a view of the reduced buffer (a copy only for non-fp32 parameters)
            p.grad = flat[offset : offset + k].view_as(p).to(p.dtype)
        offset += k


def mean_across(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The mean of each scalar over ranks (what a single process with the global batch would log)."""
    if world_size() == 1 or not values:
        return values
    stacked = torch.stack([v.detach().float().reshape(()) for v in values.values()])
    dist.all_reduce(stacked)
    return dict(zip(values, stacked / world_size(), strict=True))


class _AllReduceSum(torch.autograd.Function):
    """sum over ranks, differentiable: every rank's loss depends on every rank's input, so the gradient of
    the sum is the sum of the ranks' gradients. Public, blocking collectives: nothing is still in flight when
    the process exits (torch's private functional collectives are asynchronous)."""

    @staticmethod
    def forward(ctx, t: torch.Tensor) -> torch.Tensor:
        out = t.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        out = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out


class CPUSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics are those of the global batch, on any device.

    torch's nn.SyncBatchNorm runs on GPUs only; this computes the same statistics from one autograd-aware
    all-reduce of (sum, sum of squares, count), so gradients flow through the other ranks' statistics too.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)

        xf, c = x.float(), x.shape[1]
        dims = [0, *range(2, x.dim())]
        count = torch.full((1,), x.numel() / c, dtype=torch.float32, device=x.device)
        stats = _AllReduceSum.apply(torch.cat([xf.sum(dims), (xf * xf).sum(dims), count]))
        n = stats[-1]
        mean, var = stats[:c] / n, stats[c : 2 * c] / n - (stats[:c] / n) ** 2
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean, alpha=m)
                self.running_var.mul_(1 - m).add_(var * n / (n - 1), alpha=m)
        return y.to(x.dtype)


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Batch norm layers of `module` (in place) computing global-batch statistics across ranks: torch's
    SyncBatchNorm on CUDA, CPUSyncBatchNorm elsewhere. Parameters and buffers are the same tensors."""
    if world_size() == 1:
        return module
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, CPUSyncBatchNorm):
            new = CPUSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats)  # fmt: skip
            for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                setattr(new, key, getattr(child, key))
            new.train(child.training)
            setattr(module, name, new)
        else:
            sync_batchnorm(child, device)
    return module
