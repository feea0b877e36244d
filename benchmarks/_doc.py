"""What the benchmark scripts share: the machine line, measured blocks written into docs pages (between
<!-- name:start --> and <!-- name:end --> markers), bar charts, common options, and reuse of finished runs."""

from __future__ import annotations

import argparse
import platform
import statistics
from pathlib import Path

import torch

from distilkit.engine.config import TrainConfig

DOCS = Path(__file__).resolve().parents[1] / "docs"


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    cpu = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def mean_std(values: list[float]) -> str:
    """A table cell: the mean +- the sample std over seeds, or the one value."""
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} +- {statistics.stdev(values):.1f}"


def bar_chart(name: str, title: str, ylabel: str, groups: dict[str, dict[str, float]], line: float | None = None):
    """Grouped bars (one group per key of `groups`, one bar per inner key) saved as docs/img/`name`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = list(next(iter(groups.values())))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(bars) * len(groups)), 3.5))
    width = 0.8 / len(groups)
    for i, (group, values) in enumerate(groups.items()):
        xs = [j + (i - (len(groups) - 1) / 2) * width for j in range(len(bars))]
        drawn = ax.bar(xs, [values[b] for b in bars], width, label=group)
        ax.bar_label(drawn, fmt="%.2f" if line else "%.1f", fontsize=7)
    if line is not None:
        ax.axhline(line, color="red", linestyle="--", linewidth=1, label=f"target {line}")
    ax.set_xticks(range(len(bars)), bars, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = DOCS / "img" / name
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_clip(path: Path, images, rate: int = 30) -> Path:
    """An H.264 video of `images` (H x W x 3 uint8, all one size), the input of the video benchmarks."""
    import av

    images = list(images)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.height, stream.width, stream.pix_fmt = images[0].shape[0], images[0].shape[1], "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_block(page: str, name: str, body: str) -> Path:
    path = DOCS / page
    text = path.read_text() if path.exists() else f"# {page}\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
    return path


def teacher_task_args(p: argparse.ArgumentParser) -> None:
    """The options every teacher -> student benchmark shares: run settings and the two tasks' teachers."""
    p.add_argument("--student", default="segformer-b0")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synth-teacher", required=True)
    p.add_argument("--camvid", help="CamVid root (day sequences, val)")
    p.add_argument("--camvid-teacher")
    p.add_argument("--camvid-imgsz", type=int, nargs=2, default=[192, 256])


def augment_args(p: argparse.ArgumentParser) -> None:
    """Photometric augmentation of every labelled (source) crop, in every arm: train-teacher's --jitter/--hue/--grey."""
    p.add_argument("--jitter", type=float, default=0.2, help="source brightness/contrast/saturation jitter")
    p.add_argument("--hue", type=float, default=0.0, help="source hue rotation (0.5: any hue)")
    p.add_argument("--grey", type=float, default=0.0, help="probability of a greyscale source crop")


def augment_of(args: argparse.Namespace) -> dict:
    """The `aug` entry of method_args for `augment_args`' options."""
    return {"jitter": args.jitter, "hue": args.hue, "grey": args.grey}


def finished(run_dir: Path, cfg: TrainConfig) -> bool:
    """Whether `run_dir` holds a finished run of exactly this experiment (the same experiment, final weights)."""
    from distilkit.engine.compare import run_finished

    return run_finished(run_dir, cfg)
