"""Supervised segmentation losses (cross-entropy, Dice), per batch or per image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.data.base import IGNORE_INDEX


def per_image_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """B x H x W values -> B means over each image's valid pixels (0 for an image with none)."""
    return (values * valid).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = IGNORE_INDEX, per_sample: bool = False
) -> torch.Tensor:
    """Pixel CE over valid pixels: one mean over the batch, or one per image (`per_sample`)."""
    if not per_sample:
        return F.cross_entropy(logits.float(), labels, ignore_index=ignore_index)
    ce = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="none")
    return per_image_mean(ce, (labels != ignore_index).float())


def one_hot(labels: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """B x C x H x W float one-hot of the labels, all zero at ignored pixels (scattered channels-first: one
    pass, no permute of a channels-last copy)."""
    valid = labels != ignore_index
    out = torch.zeros(labels.shape[0], num_classes, *labels.shape[-2:], device=labels.device)
    return out.scatter_(1, (labels.clamp(max=num_classes - 1) * valid)[:, None], valid[:, None].float())


def dice_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    smooth: float = 1e-5,
    ignore_index: int = IGNORE_INDEX,
    per_sample: bool = False,
) -> torch.Tensor:
    """1 - mean_c (2 TP_c + s) / (2 TP_c + FP_c + FN_c + s) on softmax probabilities, ignore pixels excluded.

    TP, FP, FN are soft counts summed over batch and pixels (over each image's pixels with `per_sample`);
    FP = sum(p) - TP and FN = sum(onehot) - TP, so only one product map is built.
    """
    c = logits.shape[1]
    onehot = one_hot(labels, c, ignore_index)
    prob = F.softmax(logits.float(), 1) * (labels != ignore_index)[:, None]
    dims = (2, 3) if per_sample else (0, 2, 3)
    tp = (prob * onehot).sum(dims)
    fp = prob.sum(dims) - tp
    fn = onehot.sum(dims) - tp
    score = (2 * tp + smooth) / (2 * tp + fp + fn + smooth)
    return 1 - score.mean(-1)
