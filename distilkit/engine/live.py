"""Live logging of a training run: TensorBoard event files in the run directory (losses, learning rate,
evaluation mIoU and per-class IoU, prediction overlays), through torch's SummaryWriter. TensorBoard is an
optional extra: without it the run says so in one line and trains as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distilkit.utils.console import console

OVERLAYS = 2  # validation images drawn at each evaluation
_said = False  # the "not installed" line, once per process (a comparison trains many runs)


class LiveLog:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises it when the tensorboard package is missing
            global _said
            if not _said:
                console.print("live logging off: `pip install tensorboard` to watch runs (tensorboard --logdir runs)")
                _said = True
            return
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def scalars(self, values: dict[str, float], step: int, prefix: str = "train") -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def evaluation(self, results: dict, step: int, overlays: list[np.ndarray]) -> None:
        """mIoU, pixel accuracy, every class's IoU, and overlays (H x W x 3 uint8) of the student's predictions."""
        if self.writer is None:
            return
        self.scalars({"miou": results["miou"], "pixel_acc": results["pixel_acc"]}, step, "val")
        self.scalars({k: v["iou"] for k, v in results["per_class"].items() if v["iou"] is not None}, step, "val_iou")
        for i, image in enumerate(overlays):
            self.writer.add_image(f"val/prediction_{i}", torch.from_numpy(image).permute(2, 0, 1), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
