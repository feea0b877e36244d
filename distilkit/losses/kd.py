"""Pixel knowledge distillation: KL(softmax(z_t / T) || softmax(z_s / T)) * T^2 per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.losses.seg import per_image_mean


class _KDMap(torch.autograd.Function):
    """T^2 KL(p_t || softmax(s / T)) per pixel, with the gradient written out: d/ds = T (softmax(s / T) - p_t)
    (p_t sums to 1). One saved tensor and one backward product instead of autograd's chain through
    log_softmax, the product and the sum: pixel KD's share of a distill step."""

    @staticmethod
    def forward(ctx, student: torch.Tensor, p_t: torch.Tensor, neg_entropy: torch.Tensor, temperature: float):
        log_q = F.log_softmax(student.float() / temperature, dim=1)
        out = (neg_entropy - (p_t * log_q).sum(1)) * temperature**2
        ctx.save_for_backward(log_q.exp_().sub_(p_t))  # q - p, in place of log_q
        ctx.temperature, ctx.dtype = temperature, student.dtype
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (q_minus_p,) = ctx.saved_tensors
        return (q_minus_p * (grad[:, None] * ctx.temperature)).to(ctx.dtype), None, None, None


def pixel_kd_map(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """B x H x W map of the KL divergence, summed over classes, times T^2 (teacher logits are detached).

    KL = sum_c p_t log p_t - sum_c p_t log p_s: the teacher's half is computed without autograd, and the
    student's gradient is written out (`_KDMap`), checked against autograd and by hand in the tests."""
    with torch.no_grad():
        log_p_t = F.log_softmax(teacher.float() / temperature, dim=1)
        p_t = log_p_t.exp()
        neg_entropy = (p_t * log_p_t).sum(1)
    return _KDMap.apply(student, p_t, neg_entropy, temperature)


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
