"""The dataset base: a list of (image, label) files, label-id mapping, and checks that name the bad file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from distilkit.errors import DistilkitError, one_line

IGNORE_INDEX = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class DatasetInfo:
    """What a model trained on this data must know: classes, colours, the ignore index, eval classes."""

    name: str
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int = IGNORE_INDEX
    eval_classes: tuple[int, ...] | None = None  # None: all classes count in the mean
    default_imgsz: tuple[int, int] = (512, 512)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def make_lut(mapping: dict[int, int], size: int = 256, strict: bool = True) -> np.ndarray:
    """A lookup table raw value -> train id. Unlisted values become -1 (an error) if strict, else ignore."""
    lut = np.full(size, -1 if strict else IGNORE_INDEX, dtype=np.int64)
    for raw, train_id in mapping.items():
        lut[raw] = train_id
    return lut


def to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    """Any mode Pillow opens as RGB uint8: 16-bit and 32-bit integer greys scaled to 8 bits (Pillow's own
    convert would clip them to white), float images refused."""
    if im.mode.startswith("I"):
        grey = np.asarray(im).astype(np.int64)
        if grey.min() < 0 or grey.max() > 65535:
            raise DistilkitError(f"cannot read image {path}: integer values outside 0..65535 (mode {im.mode})")
        scale = 257 if im.mode.startswith("I;16") or grey.max() > 255 else 1
        return np.repeat((grey / scale).round().astype(np.uint8)[..., None], 3, axis=2)
    if im.mode == "F":
        raise DistilkitError(f"cannot read image {path}: floating-point pixels; save it as 8- or 16-bit")
    return np.asarray(im.convert("RGB"))


def check_regular(path: Path, what: str) -> None:
    """Refuse a pipe, socket or device file where an image is read: opening it blocks or never ends. A missing
    path passes (the reader says "not found")."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a pipe, socket or device"
        raise DistilkitError(f"cannot read {what} {path}: {kind}, not a regular file")


def read_image(path: Path) -> np.ndarray:
    """RGB uint8 HxWx3 as displayed (EXIF orientation applied); one clear error for a missing, empty or
    corrupt file."""
    check_regular(path, "image")
    try:
        with Image.open(path) as im:
            return to_rgb8(ImageOps.exif_transpose(im), path)
    except FileNotFoundError:
        raise DistilkitError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DistilkitError(f"cannot read image {path}: {e}") from None


def read_label_raw(path: Path) -> np.ndarray:
    """The raw label values (palette index or grey level), not converted to RGB."""
    check_regular(path, "label")
    try:
        with Image.open(path) as im:
            if im.mode in ("RGB", "RGBA"):
                raise DistilkitError(f"label {path} is a colour image; expected one channel of class ids")
            return np.asarray(ImageOps.exif_transpose(im))  # oriented as its image is
    except FileNotFoundError:
        raise DistilkitError(f"label not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DistilkitError(f"cannot read label {path}: {e}") from None


@dataclass
class SegDataset:
    """Files on disk -> (RGB uint8 HxWx3, int64 HxW train ids). Transforms live in `transforms.py`."""

    info: DatasetInfo
    samples: list[tuple[Path, Path | None]]  # (image, label or None for unlabelled frames)
    lut: np.ndarray | None = None  # raw label value -> train id; None: values are train ids already
    split: str = "train"
    extra: dict = field(default_factory=dict)
    skip_bad: bool = False  # --skip-bad: a bad sample is logged and left out instead of stopping the run

    def __len__(self) -> int:
        return len(self.samples)

    def head(self, n: int | None) -> SegDataset:
        """The first `n` samples (--train-limit, for smoke runs); the whole set when `n` is None."""
        return self if n is None or n >= len(self) else replace(self, samples=self.samples[:n])

    def load_or_skip(self, index: int, label_only: bool = False):
        """`load` (or `load_label`), or None with a warning naming the file when the sample is bad and
        `skip_bad` is set."""
        try:
            return self.load_label(index) if label_only else self.load(index)
        except DistilkitError as e:
            if not self.skip_bad:
                raise
            from distilkit.utils.console import warn

            warn(f"--skip-bad: skipping sample {index} of {self.info.name} ({self.split}): {one_line(e)}")
            return None

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        img_path, lbl_path = self.samples[index]
        image = read_image(img_path)
        if lbl_path is None:
            return image, np.full(image.shape[:2], self.info.ignore_index, dtype=np.int64)
        label = self.map_label(self.read_label(lbl_path), lbl_path)
        if label.shape != image.shape[:2]:
            raise DistilkitError(
                f"label {lbl_path} is {label.shape[1]}x{label.shape[0]} but image {img_path} is "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        return image, label

    def load_label(self, index: int) -> np.ndarray:
        """The label alone (class statistics need no image)."""
        img_path, lbl_path = self.samples[index]
        if lbl_path is None:
            return self.load(index)[1]
        return self.map_label(self.read_label(lbl_path), lbl_path)

    def read_label(self, path: Path) -> np.ndarray:
        return read_label_raw(path)

    def map_label(self, raw: np.ndarray, path: Path) -> np.ndarray:
        """Map raw values to train ids; a value the dataset does not define is an error naming the file."""
        raw = raw.astype(np.int64)
        lut = self.lut
        if lut is None:
            valid = list(range(self.info.num_classes)) + [self.info.ignore_index]
            lut = make_lut({v: v for v in valid}, size=max(256, int(raw.max()) + 1))
        if raw.min() < 0 or raw.max() >= len(lut):
            bad = int(raw.max()) if raw.max() >= len(lut) else int(raw.min())
            raise DistilkitError(f"label {path} has value {bad}, outside the {self.info.name} label range")
        label = lut[raw]
        if (label < 0).any():
            bad = sorted(set(np.unique(raw[label < 0]).tolist()))[:5]
            raise DistilkitError(f"label {path} has values {bad} that {self.info.name} does not define")
        return label


def require_samples(samples: list, name: str, split: str, where: Path) -> list:
    if not samples:
        raise DistilkitError(f"dataset '{name}' has no images for split '{split}' under {where}")
    return samples
