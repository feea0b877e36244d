"""Segmentation metrics from one confusion matrix over a whole split (the Cityscapes evaluation)."""

from __future__ import annotations

import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = 255):
    """C x C counts, rows = ground truth, columns = prediction; ignore pixels excluded."""
    valid = target != ignore_index
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes).cpu()


def summarize(cm: torch.Tensor, class_names, eval_classes=None) -> dict:
    """Per-class IoU and accuracy, mIoU, pixel accuracy and mean class accuracy.

    A class absent from both ground truth and prediction has no IoU and is left out of the mean; with
    `eval_classes` (e.g. SYNTHIA's 16, a synthetic model's 9), those classes count, and so does every other
    class the ground truth holds: a model that never predicts a class that is there scores 0 on it, it is
    not left out of the mean.
    """
    cm = cm.double()
    tp = cm.diag()
    gt, pred = cm.sum(1), cm.sum(0)
    union = gt + pred - tp
    classes = list(range(len(class_names)))
    if eval_classes is not None:
        classes = sorted(set(eval_classes) | {c for c in classes if gt[c] > 0})
    per_class, ious, accs = {}, [], []
    for c in classes:
        iou = (tp[c] / union[c]).item() if union[c] > 0 else None
        acc = (tp[c] / gt[c]).item() if gt[c] > 0 else None
        per_class[class_names[c]] = {"iou": iou, "acc": acc, "pixels": int(gt[c].item())}
        if iou is not None:
            ious.append(iou)
        if acc is not None:
            accs.append(acc)
    total = cm.sum().item()
    return {
        "miou": sum(ious) / len(ious) if ious else 0.0,
        "pixel_acc": tp.sum().item() / total if total else 0.0,
        "mean_acc": sum(accs) / len(accs) if accs else 0.0,
        "per_class": per_class,
        "scored": len(ious),  # classes in the mean
    }
