"""FastLiteSSNet: the small student of HDL (UNet teacher -> FastLiteSSNet).

Encoder: 4 stride-2 stages of 32, 64, 128, 256 channels (x width), each a strided 3x3 conv then a
depthwise-separable block. Decoder: Fast Cross-Scale Fusion (per-scale 1x1 conv to one width, resize to the
deepest scale, softmax-normalised learnable scalar weights, weighted sum, conv-BN-ReLU), a boundary attention
x * (1 + sigmoid(conv x)), and up blocks with skips back to stride 2. Features for distillation: the 4 skips
and the fused map.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.models.base import SegModel
from distilkit.models.pretrained import load_encoder_weights
from distilkit.models.registry import register_model
from distilkit.utils.console import warn

CHANNELS = (32, 64, 128, 256)


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


def stage(cin: int, cout: int) -> nn.Sequential:
    """Halve the resolution (strided 3x3), then a depthwise-separable 3x3 block."""
    return nn.Sequential(
        conv_bn_relu(cin, cout, 3, 2), conv_bn_relu(cout, cout, 3, 1, cout), conv_bn_relu(cout, cout, 1)
    )


class Encoder(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        ins = (3, *channels[:-1])
        self.stages = nn.ModuleList(stage(i, o) for i, o in zip(ins, channels, strict=True))
        self.out_channels = (3, *channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """[input, stride 2, 4, 8, 16]: the smp convention (stage 0 is the input)."""
        feats = [x]
        for s in self.stages:
            feats.append(s(feats[-1]))
        return feats


class FastCrossScaleFusion(nn.Module):
    """Per-scale 1x1 projections, resized to the deepest scale, summed with softmax(w) weights, conv-BN-ReLU."""

    def __init__(self, channels: tuple[int, ...], width: int):
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(c, width, 1, bias=False) for c in channels)
        self.weights = nn.Parameter(torch.zeros(len(channels)))
        self.fuse = conv_bn_relu(width, width)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[-1].shape[-2:]
        w = torch.softmax(self.weights, 0)
        fused = sum(
            w[i] * F.interpolate(p(f), size=size, mode="bilinear", align_corners=False)
            if f.shape[-2:] != size
            else w[i] * p(f)
            for i, (p, f) in enumerate(zip(self.proj, feats, strict=True))
        )
        return self.fuse(fused)


class BoundaryAttention(nn.Module):
    """x * (1 + sigmoid(conv x)): amplifies edges without ever suppressing the input."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1 + torch.sigmoid(self.conv(x)))


class UpBlock(nn.Module):
    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.conv = nn.Sequential(conv_bn_relu(cin + cskip, cout, 1), conv_bn_relu(cout, cout, 3, 1, cout))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], 1))


class Decoder(nn.Module):
    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        width = channels[2]
        self.fusion = FastCrossScaleFusion(channels, width)
        self.attention = BoundaryAttention(width)
        ups, cin = [], width
        for skip in reversed(channels[:-1]):  # stride 8, 4, 2
            ups.append(UpBlock(cin, skip, skip))
            cin = skip
        self.ups = nn.ModuleList(ups)
        self.out_channels = cin

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(fused map, last decoder feature): both are distilled, the second also classified."""
        skips = feats[1:]
        fused = self.attention(self.fusion(skips))
        x = fused
        for up, skip in zip(self.ups, reversed(skips[:-1]), strict=True):
            x = up(x, skip)
        return fused, x


class FastLiteSSNet(SegModel):
    """A SegModel whose features also carry the fused map (`fused`), which HDL distils."""

    def forward(self, x: torch.Tensor, return_features: bool = False):
        stages = self.net.encoder(x)
        fused, decoded = self.net.decoder(stages)
        logits = F.interpolate(self.net.segmentation_head(decoded), size=x.shape[-2:], mode="bilinear",
                               align_corners=False)  # fmt: skip
        if not return_features:
            return logits
        return logits, {"encoder": stages[1:], "decoder": decoded, "fused": fused}


class _Net(nn.Module):
    def __init__(self, num_classes: int, width: float):
        super().__init__()
        channels = tuple(max(8, int(round(c * width))) for c in CHANNELS)
        self.encoder = Encoder(channels)
        self.decoder = Decoder(channels)
        self.segmentation_head = nn.Conv2d(self.decoder.out_channels, num_classes, 1)


@register_model("fastlitessnet")
def fastlitessnet(num_classes: int, pretrained: str | None = None, width: float = 1.0) -> SegModel:
    """FastLiteSSNet with a width multiplier (channels 32/64/128/256 x width)."""
    model = FastLiteSSNet(_Net(num_classes, width))
    if pretrained == "imagenet":
        warn("fastlitessnet has no imagenet weights; using random init (or pass --pretrained PATH)")
    elif pretrained:
        model.encoder_init = load_encoder_weights(model.net.encoder, Path(pretrained))
    return model
