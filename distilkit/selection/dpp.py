"""Greedy MAP inference for determinantal point processes with incremental Cholesky updates
(Chen, Zhang and Zhou, NeurIPS 2018): O(N k^2) time after the k kernel rows it asks for."""

from __future__ import annotations

from collections.abc import Callable

import torch


def greedy_map(diag: torch.Tensor, row: Callable[[int], torch.Tensor], k: int, eps: float = 1e-10) -> list[int]:
    """Pick k items greedily maximising log det(L_Y); `diag` is L's diagonal, `row(j)` its j-th row.

    Each step adds the item with the largest marginal gain d_j^2 = L_jj - |c_j|^2 (the squared diagonal of
    the Cholesky factor of L_Y extended by j). When no item adds volume (k beyond the kernel's rank) a new
    greedy round starts over the items left, so exactly min(k, N) distinct items come back.
    """
    n = diag.numel()
    k = min(k, n)
    chosen: list[int] = []
    taken = torch.zeros(n, dtype=torch.bool)
    while len(chosen) < k:
        d2 = diag.double().clone()
        d2[taken] = -float("inf")
        c = torch.zeros(k - len(chosen), n, dtype=torch.float64)
        j = int(d2.argmax())
        for it in range(k - len(chosen)):
            if d2[j] <= eps and it > 0:  # the round is out of volume: restart over the remaining items
                break
            chosen.append(j)
            taken[j] = True
            if len(chosen) == k:
                break
            e = (row(j).double() - c[:it, j] @ c[:it]) / d2[j].clamp(min=eps).sqrt()
            c[it] = e
            d2 = d2 - e**2
            d2[taken] = -float("inf")
            j = int(d2.argmax())
    return chosen


def quality_diversity_kernel(features: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, Callable]:
    """L_ij = q_i S_ij q_j with S = F F^T over L2-normalised features; returns (diag, row) without forming L."""
    f = torch.nn.functional.normalize(features.double(), dim=1)
    q = quality.double()

    def row(j: int) -> torch.Tensor:
        return q[j] * (f @ f[j]) * q

    return q * (f * f).sum(1) * q, row
