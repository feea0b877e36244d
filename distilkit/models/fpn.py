"""FPN through smp: a light pyramid decoder (stride-4 logits), the edge student's decoder."""

from distilkit.models.base import register_smp_family
from distilkit.models.encoders import EFFICIENTNET_LITE

register_smp_family("fpn", "fpn", {"resnet18": "resnet18", **EFFICIENTNET_LITE}, "FPN (stride-4 logits)")
