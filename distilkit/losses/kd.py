"""Pixel knowledge distillation: KL(softmax(z_t / T) || softmax(z_s / T)) * T^2 per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.losses.seg import per_image_mean


def pixel_kd_map(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """B x H x W map of the KL divergence, summed over classes, times T^2 (teacher logits are detached).

    KL = sum_c p_t log p_t - sum_c p_t log p_s: the teacher's half is computed without autograd, so only
    the cross term keeps full-resolution tensors for the backward pass (a KD step's largest overhead)."""
    with torch.no_grad():
        log_p_t = F.log_softmax(teacher.float() / temperature, dim=1)
        p_t = log_p_t.exp()
        neg_entropy = (p_t * log_p_t).sum(1)
    cross = (p_t * F.log_softmax(student.float() / temperature, dim=1)).sum(1)
    return (neg_entropy - cross) * temperature**2


def pixel_kd(
    student: torch.Tensor,
    teacher: torch.Tensor,
    temperature: float = 1.0,
    valid: torch.Tensor | None = None,
    per_sample: bool = False,
) -> torch.Tensor:
    """Mean of `pixel_kd_map` over valid pixels (all pixels without a mask), over the batch or per image
    (`per_sample`); logits of different sizes are compared at the student's size."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = F.interpolate(teacher.float(), size=student.shape[-2:], mode="bilinear", align_corners=False)
    kd = pixel_kd_map(student, teacher, temperature)
    if per_sample:
        return kd.flatten(1).mean(1) if valid is None else per_image_mean(kd, valid)
    return kd.mean() if valid is None else (kd * valid).sum() / valid.sum().clamp(min=1)
