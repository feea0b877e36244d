"""Data registry: named datasets yielding (image, label) with labels in train ids and ignore = 255.

Importing this package registers every built-in dataset; adding one means adding one file here and
decorating its builder with `@register_dataset`.
"""

from distilkit.data import camvid, cityscapes, folder, gta, synth, synthia, voc  # noqa: F401  (registration)
from distilkit.data.base import DatasetInfo, SegDataset
from distilkit.data.registry import build_dataset, dataset_names, register_dataset

__all__ = ["DatasetInfo", "SegDataset", "build_dataset", "dataset_names", "register_dataset"]
