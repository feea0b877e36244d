"""Cityscapes (official layout) and the 19-class label space shared by GTA5, SYNTHIA and the synthetic domains."""

from __future__ import annotations

from pathlib import Path

from distilkit.data.base import DatasetInfo, SegDataset, make_lut, require_samples
from distilkit.data.registry import find_root, register_dataset

CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
CITYSCAPES_PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip
# Official label id -> train id (cityscapesScripts labels.py); every other id in 0..33 is ignored.
LABEL_ID_TO_TRAIN_ID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
    27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip

CITYSCAPES_INFO = DatasetInfo("cityscapes", CITYSCAPES_CLASSES, CITYSCAPES_PALETTE, default_imgsz=(512, 1024))
LAYOUT = "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png"


def cityscapes_lut(strict: bool):
    """Label ids 0..33 map to train ids or ignore; with `strict`, any other value is an error."""
    mapping = {i: LABEL_ID_TO_TRAIN_ID.get(i, 255) for i in range(34)}
    return make_lut(mapping, strict=strict)


@register_dataset("cityscapes")
def build_cityscapes(root: Path | None, split: str) -> SegDataset:
    root = find_root(root, "cityscapes", lambda p: (p / "leftImg8bit").is_dir(), LAYOUT, "cityscapes")
    samples = []
    for img in sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png")):
        stem = img.name[: -len("_leftImg8bit.png")]
        label = root / "gtFine" / split / img.parent.name / f"{stem}_gtFine_labelIds.png"
        samples.append((img, label if label.exists() else None))
    require_samples(samples, "cityscapes", split, root / "leftImg8bit" / split)
    return SegDataset(CITYSCAPES_INFO, samples, cityscapes_lut(strict=True), split)
