"""Scale decoupled distillation (CVPR 2024) for segmentation logits.

Logit maps are average-pooled to m x m regions for each scale m; each region row is a KD term, weighted 1
when the teacher's global and local predictions are both right or both wrong (consistent) and `beta` when
exactly one is right (complementary). For a linear 1x1 classifier head, pooling the logits equals the
paper's SPP on the last feature map followed by the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.losses.seg import one_hot


def region_logits(logits: torch.Tensor, m: int) -> torch.Tensor:
    """B x C x m x m: the mean logit of each of m x m regions (adaptive average pooling's regions).

    When m divides both sides the regions tile the map, and a reshaped mean gives the same numbers with a
    far cheaper backward pass than adaptive pooling's on the CPU.
    """
    h, w = logits.shape[-2:]
    if h % m or w % m:
        return F.adaptive_avg_pool2d(logits.float(), m)
    return logits.float().unflatten(-1, (m, w // m)).unflatten(-3, (m, h // m)).mean((-3, -1))


def region_pyramid(x: torch.Tensor, scales: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """`region_logits(x, m)` for every m in `scales`, read off the finest scale's regions when those tile the
    map and every other scale divides them (equal-sized regions: a mean of means is the mean), so the full map
    is read once forward and written once backward."""
    top = max(scales)
    h, w = x.shape[-2:]
    if h % top or w % top or any(top % m for m in scales):
        return {m: region_logits(x, m) for m in scales}
    fine = region_logits(x, top)
    return {m: region_logits(fine, m) for m in scales}


def majority(counts: torch.Tensor) -> torch.Tensor:
    """B x C x m x m (proportional) class counts -> B x m x m majority class; -1 where a region has none."""
    target = counts.argmax(1)
    target[counts.sum(1) <= 0] = -1
    return target


def region_targets(labels: torch.Tensor, m: int, num_classes: int, ignore_index: int = 255) -> torch.Tensor:
    """B x m x m majority ground-truth label of each region's valid pixels; -1 where a region has none."""
    return majority(region_logits(one_hot(labels, num_classes, ignore_index), m))


def sdd_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    scales: tuple[int, ...] = (1, 2, 4),
    beta: float = 2.0,
    temperature: float = 1.0,
    ignore_index: int = 255,
    per_sample: bool = False,
) -> torch.Tensor:
    """L_SDD = sum(weights * rows) / (number of rows), over the regions of every scale that have a valid pixel
    (with `per_sample`, over each image's own rows: a B vector).

    Teacher logits of another size are resized to the student's first. With scales = (1,) this is KD on the
    image-pooled logits.
    """
    teacher = teacher.detach()
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.interpolate(teacher.float(), size=student.shape[-2:], mode="bilinear", align_corners=False)
    if labels.shape[-2:] != student.shape[-2:]:
        labels = F.interpolate(labels[:, None].float(), size=student.shape[-2:], mode="nearest")[:, 0].long()
    b, c = student.shape[:2]
    levels = tuple(sorted({1, *scales}))
    s_reg, t_reg = region_pyramid(student, levels), region_pyramid(teacher, levels)
    counts = region_pyramid(one_hot(labels, c, ignore_index), levels)
    g_right = t_reg[1].view(-1, c).argmax(1) == majority(counts[1]).view(-1)
    total = rows = torch.zeros(b, device=student.device)
    for m in scales:
        s = s_reg[m].permute(0, 2, 3, 1).reshape(-1, c)
        t = t_reg[m].permute(0, 2, 3, 1).reshape(-1, c)
        target = majority(counts[m]).reshape(-1)
        keep = target >= 0
        kl = F.softmax(t / temperature, 1) * (F.log_softmax(t / temperature, 1) - F.log_softmax(s / temperature, 1))
        kl = kl.sum(1) * temperature**2
        local_right = t.argmax(1) == target
        global_right = g_right.repeat_interleave(m * m)
        weight = torch.where(local_right == global_right, 1.0, beta) if m != 1 else torch.ones_like(kl)
        total = total + torch.where(keep, weight * kl, 0.0).view(b, -1).sum(1)
        rows = rows + keep.view(b, -1).sum(1)
    if per_sample:
        return total / rows.clamp(min=1)
    return total.sum() / rows.sum().clamp(min=1)
