"""SegFormer (MiT-B0..B5 encoders, all-MLP decoder) through smp."""

from distilkit.models.base import SegModel, build_smp
from distilkit.models.registry import register_model


def _segformer(variant: str):
    def build(num_classes: int, pretrained: str | None = None) -> SegModel:
        return build_smp("segformer", f"mit_{variant}", num_classes, pretrained)

    build.__doc__ = f"SegFormer-{variant.upper()}: MiT-{variant.upper()} encoder, MLP decoder (stride-4 logits)."
    build.encoder = f"mit_{variant}"  # read by `distilkit models`
    return build


for _v in ("b0", "b1", "b2", "b3", "b4", "b5"):
    register_model(f"segformer-{_v}")(_segformer(_v))
