"""DeepLabV3+ through smp (output stride 16, ASPP, stride-4 logits)."""

from distilkit.models.base import register_smp_family
from distilkit.models.encoders import EFFICIENTNET_LITE

ENCODERS = {"resnet50": "resnet50", **EFFICIENTNET_LITE}
register_smp_family("deeplabv3plus", "deeplabv3plus", ENCODERS, "DeepLabV3+ (ASPP, stride-4 logits)")
