"""The one inference path: logits for images of any size, whole-image or sliding-window.

Both modes first resize to the scale the model was trained at (the image just covers the training size),
so train and test see objects at the same size; logits are resized back to the input.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from distilkit.data.transforms import base_scale, pad_to_multiple, resize_image


@torch.no_grad()
def infer_logits(model, images: torch.Tensor, imgsz: tuple[int, int], mode: str = "whole") -> torch.Tensor:
    """B x C x H x W logits (float32) for normalised images B x 3 x H x W."""
    h, w = images.shape[-2:]
    s = base_scale(h, w, imgsz)
    scaled = resize_image(images, (max(1, round(h * s)), max(1, round(w * s))))
    logits = (slide(model, scaled, imgsz) if mode == "slide" else whole(model, scaled)).float()
    if logits.shape[-2:] == (h, w):  # already at input size: a resize would cost as much as a small model
        return logits
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)


def class_map(logits: torch.Tensor) -> torch.Tensor:
    """B x H x W class ids of B x C x H x W logits: argmax over classes (the first on ties), as `max(1)`'s
    indices, which on the CPU took 2.4 ms for 11 classes at 360x480 where `argmax(1)` took 24 (it strides
    across the class planes); the video predict path's largest cost after the model (docs/benchmarks.md)."""
    return logits.max(1).indices


def whole(model, images: torch.Tensor) -> torch.Tensor:
    h, w = images.shape[-2:]
    padded, _ = pad_to_multiple(images, 32)
    return model(padded)[..., :h, :w]


def slide(model, images: torch.Tensor, window: tuple[int, int], overlap: float = 1 / 3) -> torch.Tensor:
    """Average logits over windows of the training size with `overlap` between neighbours."""
    b, _, h, w = images.shape
    wh, ww = min(window[0], h), min(window[1], w)
    sh, sw = max(1, math.ceil(wh * (1 - overlap))), max(1, math.ceil(ww * (1 - overlap)))
    rows = list(range(0, max(h - wh, 0) + 1, sh))
    cols = list(range(0, max(w - ww, 0) + 1, sw))
    if rows[-1] + wh < h:
        rows.append(h - wh)
    if cols[-1] + ww < w:
        cols.append(w - ww)
    total, count = None, torch.zeros(1, 1, h, w, device=images.device)
    for top in rows:
        for left in cols:
            out = whole(model, images[..., top : top + wh, left : left + ww]).float()
            if total is None:
                total = torch.zeros(b, out.shape[1], h, w, device=images.device)
            total[..., top : top + wh, left : left + ww] += out
            count[..., top : top + wh, left : left + ww] += 1
    return total / count
