"""Model registry: names map to builders returning a `SegModel` (logits at input size, optional features).

Importing this package registers the built-in families; adding one means one file with `@register_model`.
"""

from distilkit.models import deeplab, fastlitessnet, fpn, pspnet, segformer, unet  # noqa: F401  (registration)
from distilkit.models.base import SegModel
from distilkit.models.registry import create_model, model_names, model_table, register_model

__all__ = ["SegModel", "create_model", "model_names", "model_table", "register_model"]
