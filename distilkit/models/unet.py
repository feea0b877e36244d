"""UNet through smp: ResNet, MobileNetV2, VGG16 and EfficientNet-Lite encoders (full-resolution logits)."""

from distilkit.models.base import register_smp_family
from distilkit.models.encoders import CLASSIC, EFFICIENTNET_LITE

register_smp_family("unet", "unet", {**CLASSIC, **EFFICIENTNET_LITE}, "UNet (full-resolution logits)")
