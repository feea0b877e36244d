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


def region_targets(
    labels: torch.Tensor, m: int, num_classes: int, ignore_index: int = 255, onehot: torch.Tensor | None = None
) -> torch.Tensor:
    """B x m x m majority ground-truth label of each region's valid pixels; -1 where a region has none.

    `onehot` (from `losses.seg.one_hot`) lets several scales share one one-hot map.
    """
    b = labels.shape[0]
    onehot = one_hot(labels, num_classes, ignore_index) if onehot is None else onehot
    counts = region_logits(onehot, m)  # proportional to the counts: the argmax is the majority
    target = counts.argmax(1)
    target[counts.sum(1) <= 0] = -1
    return target.view(b, m, m)


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
    onehot = one_hot(labels, c, ignore_index)
    g_target = region_targets(labels, 1, c, ignore_index, onehot).view(-1)
    g_right = region_logits(teacher, 1).view(-1, c).argmax(1) == g_target
    total = rows = torch.zeros(b, device=student.device)
    for m in scales:
        s = region_logits(student, m).permute(0, 2, 3, 1).reshape(-1, c)
        t = region_logits(teacher, m).permute(0, 2, 3, 1).reshape(-1, c)
        target = region_targets(labels, m, c, ignore_index, onehot).reshape(-1)
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
