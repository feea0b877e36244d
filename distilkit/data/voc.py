"""Pascal VOC layout (VOCdevkit/VOC2007), as used by the UNet distillation write-up; 255 = ignore."""

from __future__ import annotations

import json
from pathlib import Path

from distilkit.data.base import DatasetInfo, SegDataset, require_samples
from distilkit.data.registry import find_root, register_dataset
from distilkit.errors import DistilkitError

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
LAYOUT = "VOC2007/{JPEGImages,SegmentationClass,ImageSets/Segmentation/<split>.txt}"


def voc_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """The standard VOC colour map (bit-interleaved class index)."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


def _is_voc(p: Path) -> bool:
    return (p / "VOC2007" / "JPEGImages").is_dir()


@register_dataset("voc")
def build_voc(root: Path | None, split: str) -> SegDataset:
    """Class names default to VOC's 21; a `classes.json` ({"names": [...]}) in VOC2007/ overrides them."""
    root = find_root(root, "VOCdevkit", _is_voc, LAYOUT, "voc") / "VOC2007"
    names = VOC_CLASSES
    if (root / "classes.json").is_file():
        names = tuple(json.loads((root / "classes.json").read_text())["names"])
    list_file = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise DistilkitError(f"voc split '{split}' missing: expected {list_file}")
    stems = [s.strip() for s in list_file.read_text().splitlines() if s.strip()]
    samples = [(root / "JPEGImages" / f"{s}.jpg", root / "SegmentationClass" / f"{s}.png") for s in stems]
    require_samples(samples, "voc", split, list_file)
    info = DatasetInfo("voc", names, voc_palette(len(names)), default_imgsz=(512, 512))
    return SegDataset(info, samples, None, split)
