"""The one model interface: `model(x)` gives logits at input size; `return_features=True` adds features."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.errors import DistilkitError
from distilkit.utils.console import warn


class SegModel(nn.Module):
    """Wraps an smp-style network (encoder / decoder / segmentation_head) behind the distilkit interface.

    Features: `encoder` is the list of encoder stages (strides 2..32, empty stages dropped), `decoder` the
    last decoder feature before the classifier; feature distillation reads them.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.arch: dict = {}

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
    """An smp model with the `pretrained` rule: 'imagenet' downloads (offline: warn, random init); a path loads."""
    import segmentation_models_pytorch as smp

    net = None
    if pretrained == "imagenet":
        try:
            net = smp.create_model(
                arch, encoder_name=encoder, encoder_weights="imagenet", classes=num_classes, **kwargs
            )
        except Exception as e:  # smp / huggingface raise many network error types; all mean "could not get it"
            warn(
                f"could not download imagenet weights for {encoder} ({type(e).__name__}); using random init. "
                "Pass --pretrained PATH to a local encoder weights file to use one."
            )
    if net is None:
        net = smp.create_model(arch, encoder_name=encoder, encoder_weights=None, classes=num_classes, **kwargs)
    if pretrained not in (None, "imagenet"):
        load_encoder_weights(net.encoder, Path(pretrained))
    head = net.segmentation_head
    for i, layer in enumerate(head):
        if isinstance(layer, nn.Upsample):  # SegModel.forward resizes to the input, from a contiguous map
            head[i] = nn.Identity()
    return SegModel(net)


def load_encoder_weights(encoder: nn.Module, path: Path) -> None:
    """Load a local encoder state dict (.safetensors, or .pth/.pt read with weights_only=True)."""
    if not path.is_file():
        raise DistilkitError(f"--pretrained {path}: no such file (use 'imagenet' or a local weights file)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state) if isinstance(state, dict) else state
    except Exception as e:  # corrupt files raise from several layers (safetensors, zipfile, unpickler)
        # not torch's own text: several lines, one of them advising weights_only=False on an untrusted file
        raise DistilkitError(
            f"--pretrained {path}: cannot read weights: not a .safetensors file nor a state dict that loads with "
            f"weights_only=True ({type(e).__name__})"
        ) from None
    own = encoder.state_dict()
    for prefix in ("", "encoder.", "net.encoder.", "module.", "backbone."):
        matched = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix) and k[len(prefix) :] in own}
        if matched:
            break
    usable = {k: v for k, v in matched.items() if v.shape == own[k].shape}
    if not usable:
        raise DistilkitError(f"--pretrained {path}: no tensor in it matches this model's encoder")
    # nn.Module's own method: smp's MixVisionTransformerEncoder overrides load_state_dict without `strict`
    nn.Module.load_state_dict(encoder, usable, strict=False)
    if len(usable) < len(own):
        warn(f"--pretrained {path}: loaded {len(usable)} of {len(own)} encoder tensors; the rest stay random")
