"""Glyph images rendered from the fonts that matplotlib ships (DejaVu, STIX, Computer Modern).

One glyph is rendered once per font and size to a grey mask with PIL; every image then gets
its own rotation, shift, stretch, colours, background, clutter, blur and noise from a NumPy
generator, so a dataset is a pure function of its seed. Only fonts whose character map holds
the glyph are used for it.

Introduced in notebooks/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

IMAGE_SIZE = 32
FONT_SIZES = (16, 18, 20, 22, 24, 26)
_CANVAS = 64
# Text fonts only: the symbol fonts (cmsy10, cmex10, STIXSiz*) map letters to other shapes,
# and LastResortHE draws a placeholder box for every code point.
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf",
    "cmb10.ttf", "cmti10.ttf",
)  # fmt: skip


@dataclass(frozen=True)
class Style:
    """How much each random factor varies between renderings (the task's difficulty).

    ``backgrounds`` are the probabilities of a solid, smooth-field, striped and textured
    background; ``min_contrast`` the smallest luminance gap between ink and background.
    """

    max_angle: float = 10.0
    max_shift: float = 2.0
    max_stretch: float = 0.1
    backgrounds: tuple[float, float, float, float] = (0.5, 0.4, 0.1, 0.0)
    clutter_prob: float = 0.15
    max_clutter: int = 1
    min_contrast: float = 0.45
    max_noise: float = 0.03
    blur_prob: float = 0.3
    max_blur: float = 0.7


# The course's default. Harder styles (more texture, clutter and contrast flips) make training
# from scratch fail even with 50 labels per class, which hides how the transfer gap shrinks.
STYLE = Style()


def font_dir() -> Path:
    """The folder of TrueType fonts shipped with matplotlib (``mpl-data/fonts/ttf``)."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _charmap(font_file: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(str(font_dir() / font_file)).get_charmap())


def fonts_with(char: str) -> tuple[str, ...]:
    """Names of the course fonts whose character map contains ``char``.

    Raises ``ValueError`` if none does (pick another character).
    """
    found = tuple(f for f in FONT_FILES if ord(char) in _charmap(f))
    if not found:
        raise ValueError(f"No matplotlib font has the glyph {char!r}; choose another character.")
    return found


@lru_cache(maxsize=4096)
def glyph_mask(font_file: str, size: int, char: str) -> Image.Image:
    """``char`` drawn white on black, centred on a 64x64 grey (``"L"``) canvas."""
    font = ImageFont.truetype(str(font_dir() / font_file), size)
    mask = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(mask).text((_CANVAS / 2, _CANVAS / 2), char, font=font, fill=255, anchor="mm")
    return mask


def _place(mask: Image.Image, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Rotate, stretch and shift a glyph mask into a 32x32 alpha map in [0, 1]."""
    angle = math.radians(rng.uniform(-style.max_angle, style.max_angle))
    sx, sy = rng.uniform(1 - style.max_stretch, 1 + style.max_stretch, size=2)
    tx, ty = rng.uniform(-style.max_shift, style.max_shift, size=2)
    cos, sin = math.cos(angle), math.sin(angle)
    c_out, c_in = IMAGE_SIZE / 2, _CANVAS / 2
    ox, oy = c_out + tx, c_out + ty
    coeffs = (
        cos / sx, -sin / sx, c_in - (cos * ox - sin * oy) / sx,
        sin / sy, cos / sy, c_in - (sin * ox + cos * oy) / sy,
    )  # fmt: skip
    out = mask.transform((IMAGE_SIZE, IMAGE_SIZE), Image.AFFINE, coeffs, Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


@lru_cache(maxsize=1)
def _grid() -> np.ndarray:
    return np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32) / IMAGE_SIZE


def _background(rng: np.random.Generator, style: Style) -> np.ndarray:
    """A 32x32x3 background in [0, 1]: solid, smooth field, stripes or texture."""
    kind = ("solid", "field", "stripes", "texture")[rng.choice(4, p=style.backgrounds)]
    if kind == "solid":
        return np.broadcast_to(rng.random(3, dtype=np.float32), (IMAGE_SIZE, IMAGE_SIZE, 3)).copy()
    if kind in ("field", "texture"):
        cells = 3 if kind == "field" else 8
        grid = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        field = Image.fromarray(grid).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        field = np.asarray(field, dtype=np.float32) / 255.0
        return field if kind == "field" else 0.5 * field + 0.5 * field.mean((0, 1))
    phi, freq, phase = rng.uniform(0, math.pi), rng.uniform(1.5, 5), rng.uniform(0, 2 * math.pi)
    rows, cols = _grid()
    wave = np.sin(2 * math.pi * freq * (rows * math.cos(phi) + cols * math.sin(phi)) + phase)
    mix = (0.5 + 0.5 * wave)[..., None].astype(np.float32)
    a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
    return a * mix + b * (1 - mix)


def _clutter(background: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Draw 1 to ``style.max_clutter`` random lines or ellipses on the background."""
    image = Image.fromarray((background * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(1, style.max_clutter + 1)):
        x0, y0, x1, y1 = rng.integers(0, IMAGE_SIZE, size=4).tolist()
        colour = tuple(rng.integers(0, 256, size=3).tolist())
        if rng.random() < 0.5:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 3)))
        else:
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            draw.ellipse(box, outline=colour, width=1)
    return np.asarray(image, dtype=np.float32) / 255.0


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _ink(background: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """A glyph colour whose luminance differs from the background's mean by ``min_contrast``."""
    lum_bg = float(background.mean((0, 1)) @ _LUMA)
    candidates = rng.random((16, 3), dtype=np.float32)
    ok = np.flatnonzero(np.abs(candidates @ _LUMA - lum_bg) >= style.min_contrast)
    if ok.size:
        return candidates[ok[0]]
    return np.full(3, 0.0 if lum_bg > 0.5 else 1.0, dtype=np.float32)


def render(char: str, rng: np.random.Generator, style: Style = STYLE) -> np.ndarray:
    """One random rendering of ``char``: a ``(32, 32, 3)`` uint8 RGB array.

    Font, size, rotation, stretch, shift, ink colour, background, clutter, blur and noise are
    drawn from ``rng`` within the ranges of ``style``; the same generator state gives the same
    pixels.
    """
    fonts = fonts_with(char)
    font = fonts[rng.integers(len(fonts))]
    alpha = _place(glyph_mask(font, int(rng.choice(FONT_SIZES)), char), rng, style)
    background = _background(rng, style)
    if rng.random() < style.clutter_prob:
        background = _clutter(background, rng, style)
    ink = _ink(background, rng, style)
    image = background * (1 - alpha[..., None]) + ink * alpha[..., None]
    noise = np.float32(rng.uniform(0, style.max_noise))
    image += rng.standard_normal(image.shape, dtype=np.float32) * noise
    pixels = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    if rng.random() < style.blur_prob:
        pixels = pixels.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, style.max_blur))))
    return np.asarray(pixels)
