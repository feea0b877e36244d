"""CamVid, 11 classes (SegNet version), with sequence selection for the day -> dusk task."""

from __future__ import annotations

from pathlib import Path

from distilkit.data.base import DatasetInfo, SegDataset, make_lut, require_samples
from distilkit.data.registry import find_root, register_dataset
from distilkit.errors import DistilkitError

CAMVID_CLASSES = (
    "sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car", "pedestrian", "bicyclist",
)  # fmt: skip
CAMVID_PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip
CAMVID_INFO = DatasetInfo("camvid", CAMVID_CLASSES, CAMVID_PALETTE, default_imgsz=(352, 480))
DAY_SEQUENCES = ("0006R0", "0016E5")
DUSK_SEQUENCES = ("0001TP",)
LAYOUT = "train/, val/ (RGB) and trainannot/, valannot/ (label maps 0..11)"


def build_camvid(root: Path | None, split: str, sequences: tuple[str, ...] | None = None) -> SegDataset:
    root = find_root(root, "camvid", lambda p: (p / "train").is_dir() and (p / "trainannot").is_dir(), LAYOUT, "camvid")
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not image_dir.is_dir():
        raise DistilkitError(f"camvid has no split '{split}' at {root} (expected {image_dir})")
    images = sorted(image_dir.glob("*.png"))
    if sequences is not None:
        images = [p for p in images if p.name.split("_")[0] in sequences]
        if not images:
            elsewhere = [s for s in ("train", "val", "test") if s != split and any(
                p.name.split("_")[0] in sequences for p in (root / s).glob("*.png"))]  # fmt: skip
            hint = f"; they are in split {' and '.join(elsewhere)}: use --split {elsewhere[0]}" if elsewhere else ""
            raise DistilkitError(f"camvid split '{split}' has no frames of sequences {', '.join(sequences)}{hint}")
    samples = [(p, label_dir / p.name) for p in images]
    require_samples(samples, "camvid", split, image_dir)
    lut = make_lut({**{i: i for i in range(11)}, 11: 255, 255: 255})
    return SegDataset(CAMVID_INFO, samples, lut, split, extra={"sequences": sequences})


@register_dataset("camvid")
def build_camvid_all(root: Path | None, split: str) -> SegDataset:
    return build_camvid(root, split)


@register_dataset("camvid-day")
def build_camvid_day(root: Path | None, split: str) -> SegDataset:
    """Day sequences 0006R0 + 0016E5: the labelled source of the day -> dusk task."""
    return build_camvid(root, split, DAY_SEQUENCES)


@register_dataset("camvid-dusk")
def build_camvid_dusk(root: Path | None, split: str) -> SegDataset:
    """Dusk sequence 0001TP (train split only): the target; its labels are used only to measure."""
    return build_camvid(root, split, DUSK_SEQUENCES)
