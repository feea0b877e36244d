"""UNet with ResNet, MobileNetV2 and VGG16 encoders through smp."""

from distilkit.models.base import SegModel, build_smp
from distilkit.models.registry import register_model

ENCODERS = {"resnet18": "resnet18", "resnet50": "resnet50", "mobilenetv2": "mobilenet_v2", "vgg16": "vgg16"}


def _unet(encoder: str):
    def build(num_classes: int, pretrained: str | None = None) -> SegModel:
        return build_smp("unet", encoder, num_classes, pretrained)

    build.__doc__ = f"UNet on a {encoder} encoder (full-resolution logits)."
    return build


for _name, _encoder in ENCODERS.items():
    register_model(f"unet-{_name}")(_unet(_encoder))
