"""Pre-flight scan of a training set: every image and label opened (headers and sizes, no decoding) before the
first step, so that bad samples are reported all at once instead of when the loop reaches them, and
`--skip-bad` leaves them out up front. Results are cached per file (path, size, mtime) under the user's cache
directory, like Ultralytics' label cache, so a second run scans nothing; the data root is never written to."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from distilkit.data.base import SegDataset, check_regular
from distilkit.errors import DistilkitError
from distilkit.schema import SCAN_CACHE
from distilkit.utils.console import warn

SHOWN = 3  # bad samples named in the error line


def cache_dir() -> Path:
    return Path(os.environ.get("DISTILKIT_CACHE", Path.home() / ".cache" / "distilkit"))


def _signature(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _size(path: Path, what: str, one_channel: bool = True) -> tuple[int, int]:
    """(width, height) as displayed (EXIF orientations 5-8 swap them), from the header alone."""
    check_regular(path, what)
    try:
        with Image.open(path) as im:
            if what == "label" and one_channel and im.mode in ("RGB", "RGBA"):
                raise DistilkitError(f"label {path} is a colour image; expected one channel of class ids")
            w, h = im.size
            return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)
    except FileNotFoundError:
        raise DistilkitError(f"{what} not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DistilkitError(f"cannot read {what} {path}: {e}") from None


def check_sample(image: Path, label: Path | None, one_channel: bool = True) -> str | None:
    """Why this sample cannot train, or None. `one_channel`: labels must be single-channel class ids (not for
    data sets that read their own label format, SYNTHIA's 16-bit colour PNGs)."""
    try:
        size = _size(image, "image")
        if label is not None:
            lsize = _size(label, "label", one_channel)
            if lsize != size:
                return f"label {label} is {lsize[0]}x{lsize[1]} but image {image} is {size[0]}x{size[1]}"
    except DistilkitError as e:
        return str(e)
    return None


def preflight(dataset: SegDataset) -> None:
    """Scan `dataset` (cached); bad samples stop the run in one line naming them, or with `skip_bad` are left
    out of `dataset.samples` now, each logged. Data sets that make their samples (the synthetic ones) have no
    files to scan."""
    if type(dataset).load is not SegDataset.load:
        return
    one_channel = type(dataset).read_label is SegDataset.read_label
    root = os.path.commonpath([str(p.parent) for p, _ in dataset.samples]) if dataset.samples else ""
    cache_file = cache_dir() / f"scan-{hashlib.sha1(root.encode()).hexdigest()[:16]}.json"
    try:
        cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
        SCAN_CACHE.validate_python(cache)  # entries of another shape must not pass for scanned files
    except (OSError, ValueError, RecursionError):  # JSONDecodeError and pydantic's ValidationError are ValueErrors
        warn(f"scan cache {cache_file} is damaged; discarded, the data is scanned again")
        cache = {}  # a damaged cache is only a slower scan
    bad, fresh = [], {}
    for i, (image, label) in enumerate(dataset.samples):
        key = f"{image}|{label}"
        try:
            sig = _signature(image) + (_signature(label) if label is not None else [])
        except OSError:
            sig = None
        hit = cache.get(key)
        reason = (
            hit["error"]
            if hit is not None and sig is not None and hit["sig"] == sig
            else check_sample(image, label, one_channel)
        )
        if sig is not None:
            fresh[key] = {"sig": sig, "error": reason}
        if reason is not None:
            bad.append((i, reason))
    if any(cache.get(k) != v for k, v in fresh.items()):  # an unchanged data set writes nothing
        try:
            from distilkit.utils.files import atomic_write

            atomic_write(cache_file, lambda p: p.write_text(json.dumps({**cache, **fresh})))
        except (OSError, DistilkitError):
            pass  # a cache that cannot be written (read-only home) costs a rescan next time, nothing else
    if not bad:
        return
    where = f"{dataset.info.name} ({dataset.split})"
    if not dataset.skip_bad:
        shown = "; ".join(reason for _, reason in bad[:SHOWN])
        more = f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
        raise DistilkitError(f"{len(bad)} bad sample(s) in {where}, found before training: {shown}{more}; fix them, "
                             "or pass --skip-bad to leave them out")  # fmt: skip
    for i, reason in bad:
        warn(f"--skip-bad: skipping sample {i} of {where}: {reason}")
    gone = {i for i, _ in bad}
    dataset.samples = [s for i, s in enumerate(dataset.samples) if i not in gone]
    if not dataset.samples:
        raise DistilkitError(f"--skip-bad: no readable sample left in {where}")
