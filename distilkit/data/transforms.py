"""Pure tensor transforms, each drawing from an explicit generator so one seed fixes every augmentation."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from distilkit.data.base import IGNORE_INDEX


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    jitter: float = 0.2  # brightness / contrast / saturation strength; 0 disables
    hue: float = 0.0  # hue rotation by up to +-hue of the colour wheel (0.5: any hue); 0 disables
    grey: float = 0.0  # probability of a greyscale image

    def geometric(self) -> AugmentConfig:
        """The same scale, crop and flip with every colour change off (e.g. for crops that get pseudo-labels)."""
        return replace(self, jitter=0.0, hue=0.0, grey=0.0)


def base_scale(height: int, width: int, size: tuple[int, int]) -> float:
    """The scale at which an image just covers `size` (keeps aspect): training and inference share it."""
    return max(size[0] / height, size[1] / width)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float in [0, 1]."""
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1).div_(255)


def normalize(image: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return (image - mean) / std


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a CxHxW or BxCxHxW float image (antialiased when shrinking)."""
    batched = image.dim() == 4
    x = image if batched else image[None]
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return x if batched else x[0]


def resize_label(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    return F.interpolate(label[None, None].float(), size=size, mode="nearest")[0, 0].long()


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * torch.rand((), generator=g).item()


def colour_jitter(image: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast and saturation, each by a factor in [1 - strength, 1 + strength]."""
    b, c, s = (_uniform(g, 1 - strength, 1 + strength) for _ in range(3))
    image = image * b
    grey = image.mean(dim=0, keepdim=True)
    image = (image - grey.mean()) * c + grey.mean()
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    image = (image - grey) * s + grey
    return image.clamp_(0, 1)


def train_transform(
    image: np.ndarray, label: np.ndarray, size: tuple[int, int], aug: AugmentConfig, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random scale around the covering scale, random crop to `size` (padding with ignore), flip, jitter."""
    img, lbl = to_tensor(image), torch.as_tensor(label)
    h, w = lbl.shape
    s = base_scale(h, w, size) * _uniform(g, *aug.scale)
    new = (max(1, round(h * s)), max(1, round(w * s)))
    img, lbl = resize_image(img, new), resize_label(lbl, new)
    pad_h, pad_w = max(0, size[0] - new[0]), max(0, size[1] - new[1])
    if pad_h or pad_w:
        img = F.pad(img, (0, pad_w, 0, pad_h), value=0.0)
        lbl = F.pad(lbl, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
    top = int(torch.randint(0, img.shape[1] - size[0] + 1, (), generator=g))
    left = int(torch.randint(0, img.shape[2] - size[1] + 1, (), generator=g))
    img = img[:, top : top + size[0], left : left + size[1]]
    lbl = lbl[top : top + size[0], left : left + size[1]]
    if aug.flip and torch.rand((), generator=g).item() < 0.5:
        img, lbl = img.flip(-1), lbl.flip(-1)
    if aug.jitter > 0:
        img = colour_jitter(img, aug.jitter, g)
    if aug.hue > 0:
        img = TF.adjust_hue(img, _uniform(g, -aug.hue, aug.hue))
    if aug.grey > 0 and torch.rand((), generator=g).item() < aug.grey:
        img = TF.rgb_to_grayscale(img, num_output_channels=3)
    return img.contiguous(), lbl.contiguous()


def pad_to_multiple(x: torch.Tensor, multiple: int = 32) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two dims up to a multiple (encoders with 5 stride-2 stages need 32); returns the pad."""
    h, w = x.shape[-2:]
    ph, pw = (math.ceil(h / multiple) * multiple - h), (math.ceil(w / multiple) * multiple - w)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate" if x.dim() == 4 else "constant")
    return x, (ph, pw)
