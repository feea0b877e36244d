"""Deployment commands: predict, fps, export-onnx."""

from __future__ import annotations

from distilkit.cli.options import not_yet


def predict() -> None:
    """Segment an image, a folder, a glob or a video with a checkpoint."""
    not_yet("predict", 3)


def fps() -> None:
    """Latency and throughput of models (PyTorch and onnxruntime)."""
    not_yet("fps", 3)


def export_onnx() -> None:
    """Export a checkpoint to ONNX and verify it against PyTorch."""
    not_yet("export-onnx", 3)
