"""Two procedurally generated street-scene domains that need no download: `synth-gta` and `synth-city`.

Both draw scenes from the same layout distribution (sky, buildings, trees, road in perspective, sidewalks,
poles with signs, cars, people) in a subset of the Cityscapes train ids. They differ in rendering, the way
a game differs from a camera: `synth-gta` is flat-shaded in saturated colours; `synth-city` uses another
palette, textures, a lighting gradient, blur and sensor noise. Every image is a pure function of
(domain, split, index, seed), generated on the fly, so there is nothing to download or cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from distilkit.data.base import SegDataset
from distilkit.data.cityscapes import CITYSCAPES_INFO
from distilkit.data.registry import register_dataset

ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR = 0, 1, 2, 5, 7, 8, 10, 11, 13
SYNTH_CLASSES = (ROAD, SIDEWALK, BUILDING, POLE, SIGN, VEGETATION, SKY, PERSON, CAR)
SYNTH_INFO = replace(CITYSCAPES_INFO, name="synth", eval_classes=SYNTH_CLASSES, default_imgsz=(128, 256))
SPLIT_SIZES = {"train": 2000, "val": 200}
SPLIT_IDS = {"train": 0, "val": 1}


@dataclass(frozen=True)
class Style:
    """How a domain renders a label layout: colours per class (choices per instance) and camera effects."""

    name: str
    domain_id: int
    colours: dict[int, tuple[tuple[int, int, int], ...]]
    texture: float  # amplitude of per-class multi-scale value noise (0: flat shading)
    lighting: float  # strength of the global lighting gradient
    blur: float  # Gaussian blur radius in pixels
    noise: float  # sensor noise standard deviation (0..255 scale)
    tint: float  # per-instance brightness variation


GAME = Style(
    "synth-gta",
    0,
    {
        ROAD: ((82, 82, 96),),
        SIDEWALK: ((196, 172, 138), (206, 186, 150)),
        BUILDING: ((176, 108, 78), (126, 126, 150), (204, 192, 160)),
        POLE: ((112, 112, 118),),
        SIGN: ((236, 204, 0), (214, 34, 34)),
        VEGETATION: ((58, 158, 52), (74, 170, 60)),
        SKY: ((110, 176, 250),),
        PERSON: ((220, 40, 120), (40, 200, 210), (250, 120, 20)),
        CAR: ((210, 30, 30), (30, 64, 210), (236, 236, 236), (236, 186, 20)),
    },
    texture=0.0,
    lighting=0.0,
    blur=0.0,
    noise=0.0,
    tint=0.08,
)
CAMERA = Style(
    "synth-city",
    1,
    {
        ROAD: ((112, 102, 94), (98, 94, 92)),
        SIDEWALK: ((150, 150, 156), (134, 128, 124)),
        BUILDING: ((118, 84, 76), (92, 96, 104), (160, 148, 132)),
        POLE: ((64, 66, 72),),
        SIGN: ((176, 168, 64), (150, 44, 44)),
        VEGETATION: ((68, 88, 44), (52, 72, 40)),
        SKY: ((206, 210, 216), (188, 196, 206)),
        PERSON: ((70, 60, 80), (120, 100, 90), (60, 70, 60)),
        CAR: ((120, 40, 40), (50, 60, 90), (170, 170, 170), (30, 30, 34)),
    },
    texture=0.22,
    lighting=0.45,
    blur=0.9,
    noise=7.0,
    tint=0.15,
)


def draw_layout(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Paint a street scene back to front; returns (class map, instance map), both HxW."""
    label = Image.new("L", (width, height), SKY)
    inst = Image.new("I", (width, height), 0)
    dl, di = ImageDraw.Draw(label), ImageDraw.Draw(inst)
    next_id = [1]

    def paint(cls: int, shape: str, xy) -> None:
        for draw, value in ((dl, cls), (di, next_id[0])):
            getattr(draw, shape)(xy, fill=value)

    def new_instance() -> None:
        next_id[0] += 1

    horizon = int(height * rng.uniform(0.38, 0.55))
    vx = width * rng.uniform(0.3, 0.7)

    x = -rng.uniform(0, 0.1) * width  # buildings along the horizon, with gaps of sky
    while x < width:
        w = width * rng.uniform(0.1, 0.3)
        if rng.random() < 0.85:
            top = horizon - height * rng.uniform(0.12, 0.42)
            paint(BUILDING, "rectangle", (x, top, x + w, horizon + 2))
            new_instance()
        x += w + (width * rng.uniform(0, 0.06) if rng.random() < 0.3 else 0)

    for _ in range(rng.integers(1, 5)):  # trees in front of the buildings
        cx, r = rng.uniform(0, width), height * rng.uniform(0.07, 0.16)
        cy = horizon - r * rng.uniform(0.6, 1.4)
        paint(VEGETATION, "rectangle", (cx - r * 0.12, cy, cx + r * 0.12, horizon + 2))
        paint(VEGETATION, "ellipse", (cx - r, cy - r, cx + r, cy + r * 0.9))
        new_instance()

    paint(SIDEWALK, "rectangle", (0, horizon, width, height))  # ground, then the road over it
    new_instance()
    left, right = width * rng.uniform(-0.3, 0.15), width * rng.uniform(0.85, 1.3)
    paint(ROAD, "polygon", [(vx - 2, horizon), (vx + 2, horizon), (right, height), (left, height)])
    new_instance()

    def road_edge(y: float, side: int) -> float:
        t = (y - horizon) / max(height - horizon, 1)
        return vx + side * 2 + t * ((right if side > 0 else left) - vx)

    for _ in range(rng.integers(1, 4)):  # poles (some with a sign) on the sidewalk
        side = rng.choice([-1, 1])
        y = rng.uniform(horizon + 0.15 * (height - horizon), height)
        scale = (y - horizon) / (height - horizon)
        x = road_edge(y, side) + side * width * rng.uniform(0.02, 0.08) * scale
        pw, ph = max(1.5, 3 * scale * width / 256), height * 0.55 * scale + 6
        paint(POLE, "rectangle", (x - pw, y - ph, x + pw, y))
        new_instance()
        if rng.random() < 0.6:
            s = max(3.0, 9 * scale * width / 256)
            shape = "ellipse" if rng.random() < 0.5 else "rectangle"
            paint(SIGN, shape, (x - s, y - ph - s, x + s, y - ph + s))
            new_instance()

    objects = []  # cars on the road and people on the sidewalks, drawn far to near
    for _ in range(rng.integers(1, 6)):
        objects.append((CAR, rng.uniform(horizon + 0.1 * (height - horizon), height * 1.05)))
    for _ in range(rng.integers(0, 5)):
        objects.append((PERSON, rng.uniform(horizon + 0.1 * (height - horizon), height)))
    for cls, y in sorted(objects, key=lambda o: o[1]):
        scale = (y - horizon) / (height - horizon)
        if cls == CAR:
            lo, hi = road_edge(min(y, height), -1), road_edge(min(y, height), 1)
            cw = width * 0.28 * scale + 4
            cx = rng.uniform(lo + cw * 0.3, max(lo + cw * 0.31, hi - cw * 0.3))
            ch = cw * rng.uniform(0.45, 0.6)
            paint(CAR, "rectangle", (cx - cw / 2, y - ch * 0.6, cx + cw / 2, y))
            paint(CAR, "rectangle", (cx - cw * 0.32, y - ch, cx + cw * 0.3, y - ch * 0.55))
            for wx in (cx - cw * 0.32, cx + cw * 0.32):
                paint(CAR, "ellipse", (wx - ch * 0.18, y - ch * 0.18, wx + ch * 0.18, y + ch * 0.12))
        else:
            side = rng.choice([-1, 1])
            px = road_edge(y, side) + side * width * rng.uniform(0.01, 0.12) * scale
            ph = height * 0.32 * scale + 5
            pw = ph * 0.16
            paint(PERSON, "ellipse", (px - pw, y - ph * 0.8, px + pw, y))
            paint(PERSON, "ellipse", (px - pw * 0.6, y - ph, px + pw * 0.6, y - ph * 0.78))
        new_instance()
    return np.asarray(label, dtype=np.int64), np.asarray(inst, dtype=np.int64)


def value_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.uniform(-1, 1, size=(max(2, height // cells), max(2, width // cells))).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((width, height), Image.BICUBIC)).clip(-1, 1)


def render(label: np.ndarray, inst: np.ndarray, style: Style, rng: np.random.Generator) -> np.ndarray:
    """Colour a layout in a domain's style; returns RGB uint8."""
    height, width = label.shape
    n = int(inst.max()) + 1
    colour = np.zeros((n, 3), np.float32)
    for i in range(n):
        pixels = label[inst == i]
        if pixels.size:
            choices = style.colours[int(pixels[0])]
            colour[i] = np.asarray(choices[rng.integers(len(choices))]) * (1 + rng.uniform(-style.tint, style.tint))
    image = colour[inst]
    if label.max() >= 0:  # sky brightens towards the horizon in both domains
        rows = np.linspace(-0.12, 0.12, height, dtype=np.float32)[:, None]
        image = np.where((label == SKY)[..., None], image * (1 + rows[..., None]), image)
    if style.texture:
        tex = 0.6 * value_noise(rng, height, width, 4) + 0.4 * value_noise(rng, height, width, 16)
        image *= 1 + style.texture * tex[..., None]
    if style.lighting:
        gx = np.linspace(-1, 1, width, dtype=np.float32)[None, :] * rng.uniform(-1, 1)
        gy = np.linspace(-1, 1, height, dtype=np.float32)[:, None] * rng.uniform(-0.5, 0.5)
        image *= (1 + style.lighting * 0.5 * (gx + gy))[..., None]
    image = image.clip(0, 255).astype(np.uint8)
    if style.blur:
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(style.blur)))
    if style.noise:
        image = (image + rng.normal(0, style.noise, image.shape)).clip(0, 255).astype(np.uint8)
    return image


def generate(style: Style, split: str, index: int, seed: int = 0, size: tuple[int, int] = (128, 256)):
    """One (image, label) pair, a pure function of its arguments."""
    rng = np.random.default_rng([seed, style.domain_id, SPLIT_IDS.get(split, 2), index])
    label, inst = draw_layout(rng, *size)
    return render(label, inst, style, rng), label


class SynthDataset(SegDataset):
    """Generated on the fly; `extra` holds the style, seed, size and length."""

    def __len__(self) -> int:
        return self.extra["length"]

    def head(self, n: int | None) -> SynthDataset:
        return self if n is None or n >= len(self) else replace(self, extra={**self.extra, "length": n})

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        e = self.extra
        return generate(e["style"], self.split, index, e["seed"], e["size"])

    def load_label(self, index: int) -> np.ndarray:
        e = self.extra
        rng = np.random.default_rng([e["seed"], e["style"].domain_id, SPLIT_IDS.get(self.split, 2), index])
        return draw_layout(rng, *e["size"])[0]


def build_synth(style: Style, split: str, seed: int = 0, size: tuple[int, int] = (128, 256), length: int = 0):
    info = replace(SYNTH_INFO, name=style.name)
    extra = {"style": style, "seed": seed, "size": size, "length": length or SPLIT_SIZES.get(split, 200)}
    return SynthDataset(info, [], None, split, extra)


@register_dataset("synth-gta")
def build_synth_gta(root: Path | None, split: str) -> SegDataset:
    """The "game" domain: flat shading, saturated colours. Needs no files (root is unused)."""
    return build_synth(GAME, split)


@register_dataset("synth-city")
def build_synth_city(root: Path | None, split: str) -> SegDataset:
    """The "camera" domain: other palette, textures, lighting gradient, blur and sensor noise."""
    return build_synth(CAMERA, split)
