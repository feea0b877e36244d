"""ImageNet feature distance (DAFormer, Hoyer et al. 2022): keep a network's bottleneck features near those of
its frozen ImageNet-initialised encoder on source pixels of "thing" classes, so self-training on synthetic
data does not forget the ImageNet knowledge that recognises them.

L_FD = lambda_FD * mean over the masked feature pixels of ||F(x) - F_ImageNet(x)||_2 (the norm along channels),
on the deepest encoder stage. A feature pixel is masked in when its label patch (stride s x s) is at least
`min_ratio` one of the chosen classes (DAFormer's downscale_label_ratio).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distilkit.data.base import DatasetInfo
from distilkit.errors import DistilkitError

# DAFormer's FD classes on Cityscapes are traffic light, traffic sign and the eight thing classes; their names
# here, with CamVid's counterparts (sign, car, pedestrian, bicyclist); any other label space names its own.
THING_NAMES = frozenset({
    "traffic light", "traffic sign", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    "signsymbol", "pedestrian", "bicyclist",
})  # fmt: skip


def thing_classes(info: DatasetInfo, names: list[str] | None = None) -> list[int] | None:
    """Class indices of `names` (default: the data set's classes in THING_NAMES); None: every pixel."""
    wanted = names if names is not None else [n for n in info.class_names if n in THING_NAMES]
    unknown = [n for n in wanted if n not in info.class_names]
    if unknown:
        raise DistilkitError(f"--fd-classes: {', '.join(unknown)} not among {info.name}'s classes")
    return [info.class_names.index(n) for n in wanted] or None


def downscale_label_ratio(labels: torch.Tensor, stride: int, min_ratio: float, num_classes: int,
                          ignore_index: int) -> torch.Tensor:  # fmt: skip
    """B x H x W labels -> B x H/s x W/s: each patch's majority label (ignore counting as a class), or
    `ignore_index` where that majority covers less than `min_ratio` of the patch."""
    sub = labels.clone()
    sub[sub == ignore_index] = num_classes
    onehot = F.one_hot(sub, num_classes + 1).permute(0, 3, 1, 2).float()
    ratio, out = F.avg_pool2d(onehot, stride).max(1)
    out[(out == num_classes) | (ratio < min_ratio)] = ignore_index
    return out


def feature_distance(features: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor,
                     classes: list[int] | None, min_ratio: float, num_classes: int,
                     ignore_index: int) -> torch.Tensor:  # fmt: skip
    """Mean L2 distance along channels between B x C x h x w `features` and the frozen `reference`, over the
    feature pixels of `classes` (all of them with None). No such pixel in the batch: 0 (DAFormer: NaN)."""
    dist = (features.float() - reference.float()).norm(p=2, dim=1)
    if classes is None:
        return dist.mean()
    stride = labels.shape[-1] // features.shape[-1]
    small = downscale_label_ratio(labels, stride, min_ratio, num_classes, ignore_index)
    small = small[..., : features.shape[-2], : features.shape[-1]]
    mask = torch.isin(small, torch.tensor(classes, device=labels.device))
    return dist[mask].mean() if mask.any() else dist.sum() * 0


def imagenet_copy(net: nn.Module, role: str, init: str | None) -> nn.Module:
    """A frozen copy of `net`'s architecture with its encoder's ImageNet weights (what FD measures against).

    Refused with one line when `net`'s encoder did not start from ImageNet weights: the distance would pull it
    towards weights it never had."""
    from distilkit.models import create_model

    record = getattr(net, "encoder_init", None) or {}
    if record.get("weights") != "imagenet" or not hasattr(net, "net"):
        raise DistilkitError(
            f"--fd-weight: {role} {net.arch.get('name', '')} has no ImageNet-initialised encoder (it started from "
            f"{record.get('weights') or init or 'random init'}); train its source checkpoint with --pretrained "
            "imagenet, or leave FD off"
        )
    arch = dict(net.arch)
    copy = create_model(arch.pop("name"), arch.pop("num_classes"), "imagenet", **arch)
    return copy.requires_grad_(False).eval()
