"""Distillation and segmentation losses, shared by the methods."""

from distilkit.losses.cwd import cwd_loss
from distilkit.losses.kd import pixel_kd, pixel_kd_map
from distilkit.losses.seg import cross_entropy, dice_loss

__all__ = ["cross_entropy", "cwd_loss", "dice_loss", "pixel_kd", "pixel_kd_map"]
