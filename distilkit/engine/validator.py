"""Evaluation over a whole split: one confusion matrix, then the metrics of `metrics.summarize`."""

from __future__ import annotations

import time
from contextlib import nullcontext

import torch

from distilkit.data.base import DatasetInfo, SegDataset
from distilkit.data.loader import EvalView, eval_loader
from distilkit.engine.checkpoint import check_label_space
from distilkit.engine.inference import class_map, infer_logits
from distilkit.engine.metrics import confusion_matrix, summarize
from distilkit.errors import DistilkitError
from distilkit.utils.progress import progress_bar


def autocast(device: torch.device, enabled: bool):
    """bf16 on the CPU, fp16 on CUDA; a no-op when disabled."""
    if not enabled:
        return nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def evaluate(
    model,
    dataset: SegDataset,
    info: DatasetInfo,
    imgsz: tuple[int, int],
    device: torch.device,
    batch: int = 4,
    workers: int = 0,
    mode: str = "whole",
    amp: bool = False,
    show_progress: bool = True,
    limit: int | None = None,
) -> dict:
    """Evaluate `model` (trained in the class space `info`) on `dataset`; returns metrics and speed."""
    check_label_space(info.class_names, dataset.info.class_names, "model", f"dataset '{dataset.info.name}'",
                      "evaluate on data in the same label space")  # fmt: skip
    if mode not in ("whole", "slide"):
        raise DistilkitError(f"--mode {mode}: expected whole or slide")
    was_training = model.training
    model.eval()
    view = EvalView(dataset, info.mean, info.std)
    if limit is not None and limit < len(view):
        view = torch.utils.data.Subset(view, range(limit))
    n = info.num_classes
    cm = torch.zeros(n, n, dtype=torch.long)
    seen, start = 0, time.perf_counter()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("evaluate", total=len(view), unit="img")
        for images, labels, _ in eval_loader(view, batch, workers):
            pairs = zip(images, labels, strict=True) if isinstance(images, list) else [(images, labels)]
            for img, lbl in pairs:
                img = img.to(device) if img.dim() == 4 else img[None].to(device)
                lbl = lbl.to(device) if lbl.dim() == 3 else lbl[None].to(device)
                with autocast(device, amp):
                    logits = infer_logits(model, img, imgsz, mode)
                cm += confusion_matrix(class_map(logits), lbl, n, info.ignore_index)
                seen += img.shape[0]
                bar.advance(task, img.shape[0])
    elapsed = time.perf_counter() - start
    model.train(was_training)
    eval_classes = dataset.info.eval_classes or info.eval_classes
    return {
        **summarize(cm, info.class_names, eval_classes),
        "images": seen,
        "images_per_s": seen / elapsed if elapsed > 0 else 0.0,
        "confusion_matrix": cm.tolist(),
    }
