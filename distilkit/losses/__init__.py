"""Distillation and segmentation losses, shared by the methods."""

from distilkit.losses.kd import pixel_kd, pixel_kd_map

__all__ = ["pixel_kd", "pixel_kd_map"]
