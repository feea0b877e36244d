"""Limits checked before any work: thread counts and image sizes that cannot work are refused with one line,
instead of a segfault or an out-of-memory traceback minutes later. Imports no torch (`main` calls it first).
"""

from __future__ import annotations

import os

from distilkit.errors import DistilkitError

MAX_THREADS = 1024  # no machine distilkit runs on has more cores; 100,000 OpenMP threads segfault torch

# Bytes of peak memory per input pixel (batch x H x W), measured once on the largest default models: the peak RSS
# (VmHWM, reset through /proc/self/clear_refs after the model is built) of one forward under torch.no_grad and
# one forward+backward, batch 2 at 128x128 and 256x256, one thread, torch 2 on the CPU; the factor is the slope
# between the two sizes, so the weights' fixed cost drops out. Inference: unet-vgg16 1,180 (full-resolution
# decoder), segformer-b5 930, deeplabv3-resnet101 720. Training: deeplabv3-resnet101 8,200 (output stride 8),
# segformer-b5 6,300, unet-vgg16 2,600. Rounded up to 2,000 and 10,000: a size refused here cannot run with any
# registered model; one let through can still run out of memory with two networks (distillation), and then ends
# in the boundary's out-of-memory line.
INFER_BYTES_PER_PIXEL = 2_000
TRAIN_BYTES_PER_PIXEL = 10_000


def thread_limit() -> int:
    """The most threads one process may ask for: 4 per core, at most MAX_THREADS."""
    return min(4 * (os.cpu_count() or 1), MAX_THREADS)


def check_thread_env() -> str | None:
    """OMP_NUM_THREADS / MKL_NUM_THREADS, checked before torch is imported (it reads them at import and
    segfaults on a huge value): the error line, or None when they are fine or unset."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = (os.environ.get(var) or "").strip()
        if value and not (value.isdigit() and 1 <= int(value) <= thread_limit()):
            return f"{var}={value}: expected a whole number from 1 to {thread_limit()} (4 per core); unset it or set 1"
    return None


def available_bytes() -> int:
    """Memory a new allocation can get: MemAvailable (Linux), else free physical pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: refuse nothing


def needed_bytes(batch: int, height: int, width: int, training: bool) -> int:
    return batch * height * width * (TRAIN_BYTES_PER_PIXEL if training else INFER_BYTES_PER_PIXEL)


def check_fits(
    batch: int, height: int, width: int, training: bool, what: str | None = None, advice: str | None = None
) -> None:
    """Refuse a batch of HxW inputs that cannot fit in memory, before any work, with the estimate and a size
    that would fit. `what` names the size in the message (default: the --imgsz and --batch options); `advice`
    replaces the smaller --imgsz to try when even one input does not fit."""
    need, free = needed_bytes(batch, height, width, training), available_bytes()
    if need <= free:
        return
    one = need // batch  # a single input
    if one <= free:
        hint = f"try --batch {free // one}"
    elif advice:
        hint = advice
    else:
        scale = (free / one) ** 0.5
        hint = f"try --imgsz {max(32, int(height * scale) // 32 * 32)} {max(32, int(width * scale) // 32 * 32)}"
        hint += " --batch 1" if batch > 1 else ""  # the size alone is too large; every other input doubles it
    what = what or f"--imgsz {height} {width} x --batch {batch}"
    raise DistilkitError(f"{what} needs about {need / 1e9:.1f} GB, {free / 1e9:.1f} GB available; {hint}")
