"""What `predict` reads and writes: images, folders, globs and videos (streamed with PyAV), and label colouring."""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from distilkit.data.base import read_image
from distilkit.errors import DistilkitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}


@dataclass
class Source:
    kind: str  # "images" or "video"
    paths: list[Path]


def resolve_source(source: str) -> Source:
    """An image, a folder of images, a glob, or a video file."""
    path = Path(source)
    if path.is_dir():
        named = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files = [p for p in named if p.is_file()]  # a FIFO or device named x.png would be read forever
        if len(files) < len(named):
            from distilkit.utils.console import warn

            skipped = ", ".join(p.name for p in named if p not in files)[:200]
            warn(f"skipping {len(named) - len(files)} entries of {path} that are not regular files "
                 f"(folders, pipes, devices, broken links): {skipped}")  # fmt: skip
        if not files:
            raise DistilkitError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return Source("images", files)
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return Source("video", [path])
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return Source("images", [path])
        raise DistilkitError(f"{path}: not an image or video file (by its extension)")
    if os.path.lexists(path):  # a pipe or device (read forever), a link in a loop or to nothing
        raise DistilkitError(f"{path}: not a regular file (a pipe, a device, or a link that loops or leads "
                             "nowhere); give an image, a folder or a video")  # fmt: skip
    if any(ch in source for ch in "*?["):
        matches = sorted(p for p in expand_glob(source) if p.suffix.lower() in IMAGE_SUFFIXES)
        files = list({p.resolve(): p for p in reversed(matches)}.values())[::-1]  # a file reached twice: once
        if not files:
            raise DistilkitError(f"no images match {source}")
        return Source("images", files)
    raise DistilkitError(f"source not found: {source}")


def input_folders(source: str, src: Source) -> list[Path]:
    """The folders a prediction reads from, which it must never write into (utils.files.WriteGuard): a folder
    given as the source, and the data set around any input (a folder holding images/ and masks/ up to two
    levels above the file, images/<split>/x.png): predicting into it would write over the ground truth."""
    folders = [Path(source)] if Path(source).is_dir() else []
    for parent in {p.parent for p in src.paths}:
        for d in [parent, *parent.parents][:3]:
            if (d / "images").is_dir() and (d / "masks").is_dir():
                folders.append(d)
                break
    return folders


def expand_glob(pattern: str) -> list[Path]:
    """The files a glob names. `**` does not follow symbolic links into directories (pathlib's rule; the glob
    module follows them, and a link back to a parent made it walk the same tree over and over)."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:first]) if first else Path(".")
    return [p for p in base.glob(str(Path(*parts[first:]))) if p.is_file()]


def output_names(paths: list[Path]) -> list[str]:
    """One output name per input, unique case-insensitively (x.png and X.PNG are one file on macOS and
    Windows), keeping the inputs' layout under their common folder (cam1/0001.png and cam2/0001.png stay
    apart); inputs that differ only by extension keep it in the name (x.png, x.jpg -> x_png, x_jpg). A name
    still taken after that (a.png -> a_png beside a_png.png) gets the first free _2, _3, ... in input order."""
    from distilkit.utils.files import name_key

    full = [p.absolute() for p in paths]
    base = Path(os.path.commonpath([p.parent for p in full]))
    rel = [p.relative_to(base).with_suffix("") for p in full]
    stems = Counter(name_key(r.as_posix()) for r in rel)
    wanted = [
        (r.parent / f"{r.name}_{p.suffix.lstrip('.').lower()}" if stems[name_key(r.as_posix())] > 1 else r).as_posix()
        for r, p in zip(rel, full, strict=True)
    ]
    reserved, taken, names = {name_key(w) for w in wanted}, set(), []
    for w in wanted:
        name, n = w, 2
        while name_key(name) in taken or (name != w and name_key(name) in reserved):
            name, n = f"{w}_{n}", n + 1
        taken.add(name_key(name))
        names.append(name)
    return names


def colour_mask(label: np.ndarray, palette) -> Image.Image:
    """A palette PNG: pixel values are class ids (a lossless label map), colours the class colours."""
    mask = Image.fromarray(label.astype(np.uint8, copy=False), mode="P")
    flat = np.asarray(palette, np.uint8).ravel().tolist()
    mask.putpalette(flat + [0] * (768 - len(flat)))
    return mask


def overlay(image: np.ndarray, label: np.ndarray, palette, alpha: float = 0.5) -> np.ndarray:
    """The image blended with the class colours (ignore and unknown ids stay as they are).

    Pillow's palette lookup and blend, in C: on a small CPU this runs beside the model, and NumPy's fancy
    indexing (`lut[label]`) alone took 2.3 ms a 360x480 frame where all of this takes 0.7.
    """
    blended = np.array(Image.blend(Image.fromarray(image), colour_mask(label, palette).convert("RGB"), alpha))
    unknown = label >= len(palette)
    if unknown.any():
        blended[unknown] = image[unknown]
    return blended


def video_frames(path: Path) -> tuple[Iterator[np.ndarray], Fraction, int]:
    """Stream decoded RGB frames one at a time (constant memory); returns (frames, frame rate, frame count)."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise DistilkitError(f"cannot read video {path}: {e}") from None
    if not container.streams.video:
        container.close()
        raise DistilkitError(f"video {path} holds no video stream (no frames)")
    stream = container.streams.video[0]
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)

    def frames() -> Iterator[np.ndarray]:
        try:
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as e:
            raise DistilkitError(f"cannot decode video {path}: {e}") from None
        finally:
            container.close()

    return frames(), Fraction(rate), int(stream.frames or 0)


class VideoWriter:
    """H.264 mp4 at the source frame rate, video only (audio is dropped). Written to a temp file beside `path`
    and renamed over it on `close`, its path claimed first (utils.files.WriteGuard), as every other output."""

    def __init__(self, path: Path, rate: Fraction, width: int, height: int):
        import av

        from distilkit.utils.files import claim

        claim(path)
        self.path, self.tmp = Path(path), Path(path).with_name(f".{Path(path).name}.tmp")
        self.container = av.open(str(self.tmp), mode="w", format="mp4")
        if "libx264" in av.codecs_available:
            options = {"preset": "ultrafast", "threads": "1"}  # cheap and one thread: it runs beside the model
            self.stream = self.container.add_stream("libx264", rate=rate, options=options)
        else:
            self.stream = self.container.add_stream("mpeg4", rate=rate)
        self.stream.width, self.stream.height = width - width % 2, height - height % 2  # yuv420p needs even sizes
        self.stream.pix_fmt = "yuv420p"

    def write(self, frame: np.ndarray) -> None:
        import av

        frame = frame[: self.stream.height, : self.stream.width]
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        """Finish the file (also after an interruption: the frames so far) and move it into place."""
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
            os.replace(self.tmp, self.path)
        finally:
            self.tmp.unlink(missing_ok=True)


def read_images(paths: list[Path]) -> Iterator[tuple[Path, np.ndarray]]:
    for path in paths:
        yield path, read_image(path)
