"""Source images rendered in the target's style ("fake" target images), for any method's training data."""

from __future__ import annotations

import torch

from distilkit.errors import DistilkitError


def fda(source: torch.Tensor, target: torch.Tensor, beta: float = 0.01) -> torch.Tensor:
    """Fourier domain adaptation: the source's (C x H x W, [0, 1]) low-frequency amplitudes replaced by the
    target's (same size), the source's phase kept.

    As FDA's numpy version (`FDA_source_to_target_np`, the one its demo runs): the band is the centred
    (2b + 1) x (2b + 1) window of the shifted spectrum, frequencies |k_y|, |k_x| <= b with
    b = floor(min(H, W) * beta), so b = 0 swaps the zero frequency alone (the mean colour). The window is
    symmetric, so the spectrum stays Hermitian and the inverse transform is real (its real part is kept,
    as there). FDA's torch version swaps b x b corners of the unshifted spectrum instead: an asymmetric band
    whose real part half-blends its border."""
    h, w = source.shape[-2:]
    b = int(min(h, w) * beta)
    fs, ft = torch.fft.fft2(source.float()), torch.fft.fft2(target.float())
    ky, kx = (torch.fft.fftfreq(n, 1 / n).abs() <= b for n in (h, w))  # integer frequencies of each index
    band = ky[:, None] & kx[None, :]
    amp = torch.where(band, ft.abs(), fs.abs())
    return torch.fft.ifft2(torch.polar(amp, fs.angle())).real.clamp(0, 1)


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
