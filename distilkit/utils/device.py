"""Device selection with one clear error for a device that is not there."""

from __future__ import annotations

import torch

from distilkit.errors import DistilkitError


def select_device(spec: str = "auto") -> torch.device:
    """Parse `auto|cpu|cuda|cuda:N|mps` and check the device exists."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DistilkitError(f"--device {spec}: CUDA is not available on this machine; use --device cpu")
        index = spec.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DistilkitError(f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(spec)
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise DistilkitError("--device mps: MPS is not available on this machine; use --device cpu")
        return torch.device("mps")
    raise DistilkitError(f"--device {spec}: expected auto, cpu, cuda or cuda:N")


def seed_everything(seed: int) -> None:
    """Fix torch's global RNGs (model init, dropout); data order and augmentation get their own seeds."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
