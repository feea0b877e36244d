"""Pixel knowledge distillation: KL(softmax(z_t / T) || softmax(z_s / T)) * T^2 per pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.losses.seg import per_image_mean


class KLToTeacher(torch.autograd.Function):
    """T^2 KL(p_t || softmax(s / T)) along `dim`, with the gradient written out: d/ds = T (softmax(s / T) - p_t)
    (p_t sums to 1 along `dim`). One saved tensor and one backward product instead of autograd's chain through
    log_softmax, the product and the sum. Pixel KD takes it over classes (dim 1), CWD over locations (dim -1)."""

    @staticmethod
    def forward(ctx, student: torch.Tensor, p_t: torch.Tensor, neg_entropy: torch.Tensor, temperature: float,
                dim: int = 1):  # fmt: skip
        log_q = F.log_softmax(student.float() / temperature, dim=dim)
        out = (neg_entropy - (p_t * log_q).sum(dim)) * temperature**2
        ctx.save_for_backward(log_q.exp_().sub_(p_t))  # q - p, in place of log_q
        ctx.temperature, ctx.dtype, ctx.dim = temperature, student.dtype, dim
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (q_minus_p,) = ctx.saved_tensors
        return (q_minus_p * (grad.unsqueeze(ctx.dim) * ctx.temperature)).to(ctx.dtype), None, None, None, None


def kl_to_teacher(student: torch.Tensor, teacher: torch.Tensor, temperature: float, dim: int) -> torch.Tensor:
    """T^2 KL(softmax(t / T) || softmax(s / T)) along `dim` (the axis summed away); the teacher's half without
    autograd (teacher detached), the student's gradient written out (`KLToTeacher`)."""
    with torch.no_grad():
        log_p_t = F.log_softmax(teacher.float() / temperature, dim=dim)
        p_t = log_p_t.exp()
        neg_entropy = (p_t * log_p_t).sum(dim)
    return KLToTeacher.apply(student, p_t, neg_entropy, temperature, dim)


def pixel_kd_map(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """B x H x W map of the KL divergence, summed over classes, times T^2 (teacher logits are detached); its
    gradient is checked against autograd and by hand in the tests."""
    return kl_to_teacher(student, teacher, temperature, dim=1)


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
