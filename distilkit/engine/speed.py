"""Latency, FLOPs, parameters and peak memory of a model, measured the same way for every backend."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable

import torch


def count_params(model) -> int | None:
    if isinstance(model, torch.nn.Module):
        return sum(p.numel() for p in model.parameters())
    return None


def count_gflops(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Forward GFLOPs per image, counted by torch's own FLOP counter (a multiply-add counts as 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9 / x.shape[0]


@torch.no_grad()
def measure_latency(fn: Callable, x: torch.Tensor, device: torch.device, warmup: int, iters: int) -> dict:
    """Per-batch latency in ms (mean, median, p90) and frames/s; CUDA timing uses events and synchronises."""
    for _ in range(warmup):
        fn(x)
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(x)
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        for _ in range(iters):
            t0 = time.perf_counter()
            fn(x)
            times.append((time.perf_counter() - t0) * 1000)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS, MiB
    times.sort()
    mean = statistics.fmean(times)
    return {
        "mean_ms": mean,
        "median_ms": statistics.median(times),
        "p90_ms": times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))],
        "fps": 1000 * x.shape[0] / mean,
        "peak_mem_mb": peak,
        "peak_mem_kind": "cuda allocated" if device.type == "cuda" else "process RSS",
    }


def benchmark(
    models: list[tuple[str, object, dict]],
    backends: list[str],
    device: torch.device,
    imgsz: tuple[int, int],
    batch: int,
    half: bool,
    warmup: int,
    iters: int,
    workdir,
) -> list[dict]:
    """Time each (label, torch model or exported file, meta) on each backend; rows for the table and JSON. A torch
    model runs eagerly ("torch") and exported to ONNX ("onnx"); an exported file once, on its own runtime."""
    from pathlib import Path

    from distilkit.data.transforms import pad_to_multiple
    from distilkit.engine.exporter import export_onnx
    from distilkit.engine.predictor import OnnxModel, load_backend
    from distilkit.errors import DistilkitError

    if half and device.type != "cuda":
        raise DistilkitError("--half needs a CUDA device")
    x, _ = pad_to_multiple(torch.randn(batch, 3, *imgsz), 32)
    rows = []
    for label, model, meta in models:
        torch_model = model if isinstance(model, torch.nn.Module) else None
        counted = torch_model if torch_model is not None else architecture(meta)  # an export: its architecture
        gflops = count_gflops(counted, x[:1]) if counted is not None else None
        for backend in backends:
            if backend == "torch":
                if torch_model is None:
                    continue
                fn = torch_model.to(device).eval()
                if half:
                    fn = fn.half()
                xin = x.to(device).half() if half else x.to(device)
            elif torch_model is None:  # an exported file runs on its own runtime (onnxruntime or OpenVINO)
                fn, xin = load_backend(Path(model), device)[0], x
            else:
                onnx_path = Path(workdir) / f"{label}.onnx"
                export_onnx(torch_model.float().cpu(), meta, onnx_path)
                fn, xin = OnnxModel(onnx_path, device), x
            stats = measure_latency(fn, xin, device, warmup, iters)
            runtime = "openvino" if torch_model is None and Path(model).suffix == ".xml" else backend
            rows.append(
                {"model": label, "backend": runtime, "params": count_params(counted), "gflops": gflops, **stats}
            )
    return rows


def architecture(meta: dict) -> torch.nn.Module | None:
    """A freshly initialised model of an exported file's architecture (from its metadata): the same
    parameter count and FLOPs as the export, which onnxruntime and OpenVINO do not report."""
    from distilkit.models import create_model

    arch = dict(meta.get("arch") or {})
    try:
        return create_model(arch.pop("name"), **arch).eval()
    except Exception:  # an architecture this version does not know: the row shows "-"
        return None


def noisy(row: dict) -> bool:
    """Timings too spread to quote a mean: p90 over 1.5x the median, or the mean over 1.2x it (another process
    on the CPU, frequency changes)."""
    return row["p90_ms"] > 1.5 * row["median_ms"] or row["mean_ms"] > 1.2 * row["median_ms"]
