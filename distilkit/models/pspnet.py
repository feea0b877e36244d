"""PSPNet through smp (pyramid pooling on the stride-8 stage). smp's PSPNet stops the encoder at stride 8
(3 stages, no dilation), where the papers' PSPNet-R18-D8 keeps all 4 stages dilated to stride 8."""

from distilkit.models.base import register_smp_family

register_smp_family("pspnet", "pspnet", {"resnet18": "resnet18"}, "PSPNet (pyramid pooling, stride-8 logits)")
