"""Channel-wise distillation (CWD, Shu et al., ICCV 2021): each channel's H x W map as a spatial distribution.

For channel c of image b: p = softmax_{HW}(z_t / tau), q = softmax_{HW}(z_s / tau), and
KL(p || q) = sum_i p_i (log p_i - log q_i), times tau^2, averaged over channels (and the batch). This is MMRazor's
`ChannelWiseDivergence` (its sum over N, C and H*W divided by N C) and the authors' code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from distilkit.losses.hdl import resize


def channel_kl(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """B x C divergences tau^2 KL(softmax(t_c / tau) || softmax(s_c / tau)) over each channel's locations; a
    teacher of another size is resized to the student's map first (teacher detached)."""
    if teacher.shape[-2:] != student.shape[-2:]:
        teacher = resize(teacher.detach(), student.shape[-2:])
    with torch.no_grad():
        log_p = F.log_softmax(teacher.detach().float().flatten(2) / tau, -1)
        p = log_p.exp()
        neg_entropy = (p * log_p).sum(-1)
    log_q = F.log_softmax(student.float().flatten(2) / tau, -1)
    return (neg_entropy - (p * log_q).sum(-1)) * tau**2


def cwd_loss(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0, per_sample: bool = False) -> torch.Tensor:
    """CWD averaged over channels and batch, or over channels per image (`per_sample`: a B vector for SAKD)."""
    per_image = channel_kl(student, teacher, tau).mean(1)
    return per_image if per_sample else per_image.mean()
