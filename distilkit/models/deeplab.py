"""DeepLabV3 and DeepLabV3+ through smp.

DeepLabV3 (ASPP on a dilated encoder, output stride 8, stride-8 logits) on ResNet-101 / ResNet-18 /
MobileNetV2: the teacher and students of the CIRKD and MMRazor tables. DeepLabV3+ (output stride 16, a
stride-4 decoder) on ResNet-50 and EfficientNet-Lite.
"""

from distilkit.models.base import register_smp_family
from distilkit.models.encoders import CLASSIC, EFFICIENTNET_LITE

V3 = {"resnet101": "resnet101", "resnet18": "resnet18", "mobilenetv2": CLASSIC["mobilenetv2"]}
register_smp_family("deeplabv3", "deeplabv3", V3, "DeepLabV3 (ASPP, output stride 8)")
V3PLUS = {"resnet50": "resnet50", **EFFICIENTNET_LITE}
register_smp_family("deeplabv3plus", "deeplabv3plus", V3PLUS, "DeepLabV3+ (ASPP, stride-4 logits)")
