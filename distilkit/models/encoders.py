"""Encoder short names (the part after the decoder in a model name, `unet-resnet18`) -> smp encoder names.

EfficientNet-Lite runs through timm (smp's `tu-` encoders): TF "same" padding and batch-norm eps 1e-3, which the
ported TF ImageNet weights need (smp's own `timm-tf_efficientnet_lite*` pads symmetrically and uses eps 1e-5).
"""

CLASSIC = {"resnet18": "resnet18", "resnet50": "resnet50", "mobilenetv2": "mobilenet_v2", "vgg16": "vgg16"}
EFFICIENTNET_LITE = {f"efficientnet-lite{i}": f"tu-tf_efficientnet_lite{i}" for i in range(3)}  # offline ImageNet
