"""Source images rendered in the target's style ("fake" target images), for any method's training data."""

from __future__ import annotations

import torch

from distilkit.errors import DistilkitError


def fda(source: torch.Tensor, target: torch.Tensor, beta: float = 0.01) -> torch.Tensor:
    """Fourier domain adaptation: swap the low-frequency amplitude of `source` (C x H x W, [0, 1]) with the
    target's (same size), keeping the source's phase. The band is the b x b corners of the unshifted
    spectrum, b = floor(min(H, W) * beta) (at least 1: the mean colour)."""
    h, w = source.shape[-2:]
    b = max(1, int(min(h, w) * beta))
    fs, ft = torch.fft.fft2(source.float()), torch.fft.fft2(target.float())
    amp, phase = fs.abs(), fs.angle()
    amp_t = ft.abs()
    for rows in (slice(0, b), slice(h - b, h)):
        for cols in (slice(0, b), slice(w - b, w)):
            amp[..., rows, cols] = amp_t[..., rows, cols]
    return torch.fft.ifft2(torch.polar(amp, phase)).real.clamp(0, 1)


def style_reference(args: dict, root):
    """The target images that restyle training crops (`--style fda --style-target NAME`), or None."""
    if not args.get("style"):
        return None
    if args["style"] != "fda":
        raise DistilkitError(f"--style {args['style']}: expected fda")
    if not args.get("style_target"):
        raise DistilkitError("--style fda needs --style-target NAME: the data set whose look to copy")
    from distilkit.data.registry import build_dataset

    return build_dataset(args["style_target"], "train", root)
