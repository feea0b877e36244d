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


def _is_name(name: str) -> bool:
    from pydantic import TypeAdapter, ValidationError

    from distilkit.schema import Name

    try:
        TypeAdapter(Name).validate_python(name)
    except ValidationError:
        return False
    return True


@register_dataset("folder")
def build_folder(root: Path | None, split: str) -> SegDataset:
    root = find_root(root, "folder", lambda p: (p / "images").is_dir() and (p / "masks").is_dir(), LAYOUT, "folder")
    spec = read_classes(root)
    if not isinstance(spec, dict):
        raise DistilkitError(f"{root}/classes file must be a mapping with a 'names' list, not a {type(spec).__name__}")
    names = spec.get("names") or ()
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) for n in names):
        raise DistilkitError(f"{root}/classes file needs a 'names' list of class names")
    bad = next((n for n in names if not _is_name(n)), None)
    if bad is not None:  # the schema's rule for a name (schema.Name): it is printed on the terminal and in errors
        raise DistilkitError(f"{root}/classes file: class name {bad!r} must be 1 to 200 printable characters")
    if len(set(names)) != len(names):
        raise DistilkitError(f"{root}/classes file names a class twice; each class needs its own name")
    if len(names) > 255:  # label maps are 8-bit PNGs: 0..254 are classes, 255 is ignore
        raise DistilkitError(f"{root}/classes file names {len(names)} classes; the folder format holds at most 255")
    names = tuple(names)
    raw_ignore = spec.get("ignore_index", 255)
    if not isinstance(raw_ignore, int) or isinstance(raw_ignore, bool) or not 0 <= raw_ignore <= 255:
        raise DistilkitError(f"{root}/classes file: ignore_index {raw_ignore!r} must be a label value 0..255")
    if raw_ignore < len(names):
        raise DistilkitError(f"{root}/classes file: ignore_index {raw_ignore} is the id of class '{names[raw_ignore]}'")
    raw_palette = spec.get("palette") or []
    valid = isinstance(raw_palette, list) and all(
        isinstance(c, list | tuple) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
        for c in raw_palette
    )
    if not valid:
        raise DistilkitError(f"{root}/classes file: 'palette' must be [r, g, b] colours of 0..255")
    palette = tuple(tuple(c) for c in raw_palette)
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
    lut = make_lut({**{i: i for i in range(len(names))}, raw_ignore: 255})
    return SegDataset(DatasetInfo("folder", names, palette), samples, lut, split)
