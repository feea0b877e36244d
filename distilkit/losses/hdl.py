"""The hybrid distillation loss's feature term: the real Cauchy-Schwarz divergence between per-channel spatial
distributions of teacher features and (adapted, resized) student features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cs_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """D_CS(p, q) = -log(<p, q> / sqrt(<p, p> <q, q>)) over the last axis, from log-densities.

    Computed with logsumexp, so tiny densities do not underflow; invariant to scaling p or q (adding a
    constant to a log-density), 0 iff p is proportional to q, positive otherwise (Cauchy-Schwarz).
    """
    pq = torch.logsumexp(log_p + log_q, -1)
    pp = torch.logsumexp(2 * log_p, -1)
    qq = torch.logsumexp(2 * log_q, -1)
    return -(pq - 0.5 * (pp + qq))


def resize(x: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """Bilinear resize to `size` (align_corners=False), in float32."""
    return F.interpolate(x.float(), size=size, mode="bilinear", align_corners=False)


def feature_cs(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """B x C divergences: each channel's softmax over H*W (temperature tau), student resized to the teacher."""
    if student.shape[-2:] != teacher.shape[-2:]:
        student = resize(student, teacher.shape[-2:])
    log_s = F.log_softmax(student.float().flatten(2) / tau, -1)
    log_t = F.log_softmax(teacher.detach().float().flatten(2) / tau, -1)
    return cs_divergence(log_s, log_t)


def pair_features(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> list[tuple[int, int]]:
    """Which student feature matches which teacher feature: aligned from the deepest end (a 5-feature
    student against a 4-stage teacher pairs its last 4)."""
    n = min(len(student), len(teacher))
    return list(zip(range(len(student) - n, len(student)), range(len(teacher) - n, len(teacher)), strict=True))


def make_adapters(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> nn.ModuleList:
    """One trained 1x1 conv per feature pair, student channels -> teacher channels (built once, from shapes)."""
    return nn.ModuleList(
        nn.Conv2d(student[i].shape[1], teacher[j].shape[1], 1) for i, j in pair_features(student, teacher)
    )


def adapt(adapter: nn.Module, feature: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """adapter(feature) resized to `size`. A 1x1 conv and bilinear resizing commute (both linear, resize weights
    sum to 1), so the conv runs at the smaller of the two sizes: the same map for less work."""
    if feature.shape[-2:] == size:
        return adapter(feature)
    if torch.Size(size).numel() < feature.shape[-2:].numel():
        return adapter(resize(feature, size))
    return resize(adapter(feature), size)


def hdl_feature_loss(
    student: list[torch.Tensor],
    teacher: list[torch.Tensor],
    adapters: nn.ModuleList,
    tau: float = 1.0,
    per_sample: bool = False,
) -> torch.Tensor:
    """D_CS averaged over channels, batch and feature pairs (over channels and pairs with `per_sample`)."""
    pairs = pair_features(student, teacher)
    adapted = [adapt(a, student[i], teacher[j].shape[-2:]) for a, (i, j) in zip(adapters, pairs, strict=True)]
    per_pair = [feature_cs(s, teacher[j], tau).mean(1) for s, (_, j) in zip(adapted, pairs, strict=True)]
    per_image = torch.stack(per_pair).mean(0)
    return per_image if per_sample else per_image.mean()
