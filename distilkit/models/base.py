"""The one model interface: `model(x)` gives logits at input size; `return_features=True` adds features."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.models import pretrained as pretrained_weights
from distilkit.models.registry import register_model


class SegModel(nn.Module):
    """Wraps an smp-style network (encoder / decoder / segmentation_head) behind the distilkit interface.

    Features: `encoder` is the list of encoder stages (strides 2..32, empty stages dropped), `decoder` the
    last decoder feature before the classifier; feature distillation reads them.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.arch: dict = {}
        self.encoder_init: dict | None = None  # where the encoder's initial weights came from (checkpoint metadata)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        stages = self.net.encoder(x)
        decoded = self.net.decoder(stages)
        logits = self.net.segmentation_head(decoded)
        if logits.shape[-2:] != x.shape[-2:]:
            # smp's decoders (SegFormer's) hand back channels-last maps; resizing a contiguous copy of the small
            # map gives contiguous full-size logits, which the per-pixel losses over the class axis read faster
            logits = F.interpolate(logits.contiguous(), size=x.shape[-2:], mode="bilinear", align_corners=False)
        if not return_features:
            return logits
        return logits, {"encoder": [s for s in stages[1:] if s.shape[1] > 0], "decoder": decoded}

    def param_groups(self, lr_mult: float = 1.0, head_lr_mult: float = 1.0) -> list[dict]:
        """Optimizer groups: the encoder at `lr_mult`, everything else (decoder, head) at `lr_mult * head_lr_mult`
        (DAFormer-style recipes give the decode head a larger learning rate)."""
        encoder = list(self.net.encoder.parameters())
        ids = {id(p) for p in encoder}
        head = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": encoder, "lr_mult": lr_mult}, {"params": head, "lr_mult": lr_mult * head_lr_mult}]


def build_smp(arch: str, encoder: str, num_classes: int, pretrained: str | None, **kwargs) -> SegModel:
    """An smp model whose encoder starts as `pretrained` says (see `distilkit.models.pretrained`)."""
    import segmentation_models_pytorch as smp

    def create(weights: str | None) -> nn.Module:
        return smp.create_model(arch, encoder_name=encoder, encoder_weights=weights, classes=num_classes, **kwargs)

    net, record = create(None), None
    if pretrained == "imagenet":
        record = pretrained_weights.load_offline(net.encoder, encoder)  # None: no installed package has them
        if record is None:
            downloaded, record = pretrained_weights.download(create, encoder)
            net = downloaded or net
    elif pretrained:
        record = pretrained_weights.load_encoder_weights(net.encoder, Path(pretrained))
    head = net.segmentation_head
    for i, layer in enumerate(head):
        if isinstance(layer, nn.Upsample):  # SegModel.forward resizes to the input, from a contiguous map
            head[i] = nn.Identity()
    model = SegModel(net)
    model.encoder_init = record
    return model


def register_smp_family(arch: str, prefix: str, encoders: dict[str, str], what: str) -> None:
    """Register `<prefix>-<short>` for each encoder: smp's `arch` decoder on that encoder."""
    for short, encoder in encoders.items():

        def build(num_classes: int, pretrained: str | None = None, _encoder: str = encoder) -> SegModel:
            return build_smp(arch, _encoder, num_classes, pretrained)

        build.__doc__ = f"{what} on a {short} encoder."
        build.encoder = encoder  # read by `distilkit models` (which ImageNet weights exist offline)
        register_model(f"{prefix}-{short}")(build)
