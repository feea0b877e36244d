"""Channel-wise distillation (CWD, Shu et al., ICCV 2021): each channel's H x W map as a spatial distribution.

For channel c of image b: p = softmax_{HW}(z_t / tau), q = softmax_{HW}(z_s / tau), and
KL(p || q) = sum_i p_i (log p_i - log q_i), times tau^2, averaged over channels (and the batch). This is MMRazor's
`ChannelWiseDivergence` (its sum over N, C and H*W divided by N C) and the authors' code.
"""

from __future__ import annotations

import torch

from distilkit.losses.hdl import resize
from distilkit.losses.kd import kl_to_teacher


def channel_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """B x C divergences tau^2 KL(softmax(t_c / tau) || softmax(s_c / tau)) over each channel's locations; a
    teacher of another size is resized to the student's map first (teacher detached). The gradient is written
    out, as for pixel KD (tested against numpy)."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = resize(teacher.detach(), student.shape[-2:])
    return kl_to_teacher(student.flatten(2), teacher.flatten(2), tau, dim=-1)


def cwd_loss(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0, per_sample: bool = False) -> torch.Tensor:
    """CWD averaged over channels and batch, or over channels per image (`per_sample`: a B vector for SAKD)."""
    per_image = channel_kl(student, teacher, tau).mean(1)
    return per_image if per_sample else per_image.mean()
