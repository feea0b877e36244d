"""SYNTHIA-RAND-CITYSCAPES: 16-bit label PNGs (class id in the first channel) mapped to Cityscapes train ids."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from distilkit.data.base import SegDataset, make_lut, require_samples
from distilkit.data.cityscapes import CITYSCAPES_INFO
from distilkit.data.registry import find_root, register_dataset
from distilkit.errors import DistilkitError

# SYNTHIA class id -> Cityscapes train id (the mapping used by DACS/DAFormer).
SYNTHIA_TO_TRAIN_ID = {
    3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 10, 10: 11, 17: 12, 8: 13, 19: 15, 12: 17, 11: 18,
}  # fmt: skip
SYNTHIA_16 = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18)  # no terrain, truck, train
SYNTHIA_13 = tuple(c for c in SYNTHIA_16 if c not in (3, 4, 5))  # also no wall, fence, pole
SYNTHIA_INFO = replace(CITYSCAPES_INFO, name="synthia", eval_classes=SYNTHIA_16, default_imgsz=(512, 512))
LAYOUT = "RGB/*.png and GT/LABELS/*.png"


def read_png16_first_channel(path: Path) -> np.ndarray:
    """SYNTHIA labels are 16-bit, often 3-channel PNGs, which Pillow truncates to 8 bits; pypng reads them exactly."""
    import png  # pypng

    try:
        width, height, rows, meta = png.Reader(filename=str(path)).asDirect()
        data = np.vstack([np.asarray(r, dtype=np.int64) for r in rows])
    except FileNotFoundError:
        raise DistilkitError(f"label not found: {path}") from None
    except (png.Error, OSError, ValueError) as e:
        raise DistilkitError(f"cannot read label {path}: {e}") from None
    planes = meta["planes"]
    return data.reshape(height, width, planes)[..., 0] if planes > 1 else data.reshape(height, width)


class SynthiaDataset(SegDataset):
    def read_label(self, path: Path) -> np.ndarray:
        return read_png16_first_channel(path)


@register_dataset("synthia")
def build_synthia(root: Path | None, split: str) -> SegDataset:
    """SYNTHIA has no official split: `train` is every frame, `val` every 10th."""
    root = find_root(root, "synthia", lambda p: (p / "RGB").is_dir(), LAYOUT, "synthia")
    images = sorted((root / "RGB").glob("*.png"))
    if split == "val":
        images = images[::10]
    samples = [(p, root / "GT" / "LABELS" / p.name) for p in images]
    require_samples(samples, "synthia", split, root / "RGB")
    lut = make_lut(SYNTHIA_TO_TRAIN_ID, size=65536, strict=False)
    return SynthiaDataset(SYNTHIA_INFO, samples, lut, split)
