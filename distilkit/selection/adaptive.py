"""SAKD's sample-level rules: the interruption schedule and operator, difficulty and easiness, the adaptive
distillation strength, and the DPP quality. Pure functions; distilkit/methods/sakd.py wires them."""

from __future__ import annotations

import math

import torch


def interruption_rate(epoch: int, epochs: int, theta: float = 0.9) -> float:
    """beta(n) = 1 - (1 - n / N)^theta: 0 at the first epoch, rising towards 1."""
    return 1.0 - (1.0 - min(epoch, epochs) / epochs) ** theta


def interrupt(
    images: torch.Tensor, beta: float, grid: int = 4, eta: float = 0.5, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, list[int]]:
    """Interrupt each image of a B x C x H x W batch on a grid x grid tiling (same tiles for the batch).

    k = round(beta * grid^2) tiles are dropped (set to 0, the normalised mean) when beta < eta, else their
    contents are shuffled among their positions by a random cycle, so every one of the k tiles moves.
    Returns the new batch and the chosen tile numbers (row-major); pixels outside the tiles are untouched.
    """
    k = round(beta * grid * grid)
    out = images.clone()
    if k == 0:
        return out, []
    th, tw = images.shape[-2] // grid, images.shape[-1] // grid
    tiles = torch.randperm(grid * grid, generator=generator)[:k].tolist()

    def box(t: int) -> tuple[slice, slice]:
        r, c = divmod(t, grid)
        return slice(r * th, (r + 1) * th), slice(c * tw, (c + 1) * tw)

    if beta < eta or k == 1:  # a single tile cannot move: shuffling needs two
        for t in tiles:
            out[(..., *box(t))] = 0
    else:
        for src, dst in zip(tiles, tiles[1:] + tiles[:1], strict=True):
            out[(..., *box(dst))] = images[(..., *box(src))]
    return out, tiles


def easiness(losses: torch.Tensor, times_selected: torch.Tensor) -> torch.Tensor:
    """d_i = (1 + w_i) L~_i (often-selected samples count as harder); e_i = min_j d_j / d_i in (0, 1]."""
    d = ((1 + times_selected.double()) * losses.double()).clamp(min=1e-12)
    return d.min() / d


def update_alpha(alpha: torch.Tensor, easy: torch.Tensor, beta: float, lam: float = 0.1) -> torch.Tensor:
    """alpha_n = lambda alpha_{n-1} + (1 - lambda) e^beta(n): easy samples lean on the teacher, hard ones
    (later in training) on the labels."""
    return lam * alpha + (1 - lam) * easy.double() ** beta


def quality(easy: torch.Tensor, gamma: float = 0.5) -> torch.Tensor:
    """q_i = exp(theta e_i), theta = gamma / (2 (1 - gamma))."""
    return torch.exp(gamma / (2 * (1 - gamma)) * easy.double())


def selection_size(n: int, ratio: float) -> int:
    return max(1, min(n, math.floor(ratio * n + 0.5)))
