"""GTA5 ("Playing for Data"): palette PNG labels whose indices are Cityscapes label ids."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from distilkit.data.base import SegDataset, require_samples
from distilkit.data.cityscapes import CITYSCAPES_INFO, cityscapes_lut
from distilkit.data.registry import find_root, register_dataset

GTA_INFO = replace(CITYSCAPES_INFO, name="gta", default_imgsz=(512, 512))
LAYOUT = "images/NNNNN.png and labels/NNNNN.png (24,966 frames)"


@register_dataset("gta")
def build_gta(root: Path | None, split: str) -> SegDataset:
    """GTA5 has no official split: `train` is every frame; `val` is every 10th frame (a quick source check)."""
    root = find_root(root, "gta", lambda p: (p / "images").is_dir() and (p / "labels").is_dir(), LAYOUT, "gta")
    images = sorted((root / "images").glob("*.png"))
    if split == "val":
        images = images[::10]
    samples = [(p, root / "labels" / p.name) for p in images]
    require_samples(samples, "gta", split, root / "images")
    # GTA labels carry a few ids outside 0..33 (e.g. 34 = license plate); they are ignored, not errors.
    return SegDataset(GTA_INFO, samples, cityscapes_lut(strict=False), split)
