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


def cpu_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and `taskset` narrow)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None, reserved: int = 0) -> int:
    """Intra-op threads for torch, onnxruntime and OpenVINO: `threads`, else $OMP_NUM_THREADS when set, else
    the cores left to each process (torchrun's local processes share them) after `reserved` data-loading
    workers (one thread each), at least one. OpenMP's default of every core oversubscribes a small CPU as soon
    as workers or another process run beside it (measured in docs/benchmarks.md, `benchmarks/threads.py`)."""
    import os

    from distilkit.utils.limits import thread_limit

    if threads is not None and not 1 <= threads <= thread_limit():
        raise DistilkitError(f"--threads {threads}: expected >= 1 and <= {thread_limit()} (4 per core)")
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        local = os.environ.get("LOCAL_WORLD_SIZE", "1")
        per_process = cpu_cores() // (int(local) if local.isdigit() and int(local) > 0 else 1)
        threads = int(env) if env.isdigit() and 0 < int(env) <= thread_limit() else max(1, per_process - reserved)
    if torch.get_num_threads() != threads:  # resizing OpenMP's pool is not free; leave an equal one alone
        torch.set_num_threads(threads)
    return threads
