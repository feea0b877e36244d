"""DeepLabV3+ through smp."""

from distilkit.models.base import SegModel, build_smp
from distilkit.models.registry import register_model


@register_model("deeplabv3plus-resnet50")
def deeplabv3plus_resnet50(num_classes: int, pretrained: str | None = None) -> SegModel:
    """DeepLabV3+ on ResNet-50 (output stride 16, ASPP, stride-4 logits)."""
    return build_smp("deeplabv3plus", "resnet50", num_classes, pretrained)
