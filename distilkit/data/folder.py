"""Any `images/` + `masks/` folder pair, matched by file stem, described by a small classes file."""

from __future__ import annotations

import json
from pathlib import Path

from distilkit.data.base import DatasetInfo, SegDataset, make_lut, require_samples
from distilkit.data.registry import find_root, register_dataset
from distilkit.errors import DistilkitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LAYOUT = "images/ and masks/ (matched by stem; optional <split>/ subfolders) and classes.json or classes.yaml"


def read_classes(root: Path) -> dict:
    """classes.json / classes.yaml: {names: [...], palette: [[r, g, b], ...], ignore_index: 255}."""
    for name in ("classes.json", "classes.yaml", "classes.yml"):
        path = root / name
        if path.is_file():
            try:
                if path.suffix == ".json":
                    return json.loads(path.read_text())
                import yaml

                return yaml.safe_load(path.read_text())
            except Exception as e:  # json and yaml raise several types; all mean the same to the user
                raise DistilkitError(f"cannot parse {path}: {e}") from None
    raise DistilkitError(f"folder dataset at {root} needs classes.json or classes.yaml with a 'names' list")


@register_dataset("folder")
def build_folder(root: Path | None, split: str) -> SegDataset:
    root = find_root(root, "folder", lambda p: (p / "images").is_dir() and (p / "masks").is_dir(), LAYOUT, "folder")
    spec = read_classes(root)
    names = tuple(spec.get("names") or ())
    if not names:
        raise DistilkitError(f"{root}/classes file has no 'names' list")
    palette = tuple(tuple(c) for c in spec.get("palette") or [])
    if len(palette) != len(names):
        palette = tuple(((37 * i) % 256, (17 * i + 80) % 256, (91 * i + 160) % 256) for i in range(len(names)))
    image_dir, mask_dir = root / "images", root / "masks"
    if (image_dir / split).is_dir():
        image_dir, mask_dir = image_dir / split, mask_dir / split
    masks = {p.stem: p for p in mask_dir.glob("*.png")}
    samples = [(p, masks.get(p.stem)) for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    require_samples(samples, "folder", split, image_dir)
    unmatched = [p.name for p, m in samples if m is None]
    if unmatched:
        raise DistilkitError(f"no mask in {mask_dir} for image {unmatched[0]} ({len(unmatched)} unmatched)")
    raw_ignore = int(spec.get("ignore_index", 255))
    lut = make_lut({**{i: i for i in range(len(names))}, raw_ignore: 255})
    return SegDataset(DatasetInfo("folder", names, palette), samples, lut, split)
