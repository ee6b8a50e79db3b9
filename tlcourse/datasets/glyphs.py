"""Glyph images rendered from the fonts that matplotlib ships (DejaVu, STIX, Computer Modern).

One glyph is rendered once per font and size to a grey mask with PIL; every image then gets
its own rotation, shift, stretch, colours, background, clutter, blur and noise from a NumPy
generator, so a dataset is a pure function of its seed. Only fonts whose character map holds
the glyph are used for it.

Introduced in notebooks/12_regularisation_and_robustness.ipynb.
"""

from __future__ import annotations

import functools
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tlcourse.datasets.imagefolder import SPLITS, write_class

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
        cos / sx,
        -sin / sx,
        c_in - (cos * ox - sin * oy) / sx,
        sin / sy,
        cos / sy,
        c_in - (sin * ox + cos * oy) / sy,
    )
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


# --- the glyph sets of the course ---------------------------------------------------------

_GREEK = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "chi",
    "psi",
    "omega",
]
_CYRILLIC = {  # upper-case letters whose shape is not also a Latin letter
    "be": "Б", "ghe": "Г", "de": "Д", "zhe": "Ж", "ze": "З", "i": "И", "short_i": "Й",
    "el": "Л", "pe": "П", "ef": "Ф", "tse": "Ц", "che": "Ч", "sha": "Ш", "shcha": "Щ",
    "hard_sign": "Ъ", "yeru": "Ы", "soft_sign": "Ь", "e_reversed": "Э", "yu": "Ю", "ya": "Я",
}  # fmt: skip


@dataclass(frozen=True)
class GlyphSet:
    """A glyph dataset: class folder name -> character, and images per class in each split."""

    chars: dict[str, str]
    per_class: tuple[int, int, int]  # train, val, test
    role: str


GLYPH_SETS: dict[str, GlyphSet] = {
    "glyphs-latin": GlyphSet(
        {f"upper_{c}": c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
        | {f"lower_{c}": c for c in "abcdefghijklmnopqrstuvwxyz"},
        (700, 100, 100),
        "source task: pretrain the course image backbones",
    ),
    "glyphs-digits": GlyphSet({str(d): str(d) for d in range(10)}, (300, 100, 200), "target task"),
    "glyphs-greek": GlyphSet(
        {n: chr(0x3B1 + i + (i >= 17)) for i, n in enumerate(_GREEK)}, (150, 50, 100), "target task"
    ),
    "glyphs-cyrillic": GlyphSet(_CYRILLIC, (150, 50, 100), "target task"),
}


def datasheet(name: str, spec: GlyphSet) -> str:
    n = len(spec.chars)
    tr, va, te = spec.per_class
    return (
        f"# {name}\n\nRole: {spec.role}.\n"
        "Origin: rendered by tlcourse from the TrueType fonts shipped with matplotlib (DejaVu "
        "Sans/Serif/Mono, STIX General, Computer Modern; only fonts whose character map holds the "
        "glyph), each image with a random font, size, rotation, stretch, shift, ink colour, "
        "background (solid, smooth colour field or stripes), an occasional clutter line, blur and "
        "noise (see `tlcourse.datasets.glyphs.Style`).\n"
        "Licence: the images are CC0 (generated); the fonts are under the DejaVu / Bitstream Vera "
        "licence, the SIL Open Font Licence (STIX) and the BaKoMa licence (Computer Modern), all "
        "free licences (see matplotlib's fonts/ttf/LICENSE_DEJAVU, LICENSE_STIX and its LICENSE file).\n"
        f"Size: {n * (tr + va + te):,} RGB images of 32x32 px, PNG.\n"
        f"Classes ({n}): {', '.join(f'{k}={v}' for k, v in sorted(spec.chars.items()))}.\n"
        f"Splits: train {tr * n:,} / val {va * n:,} / test {te * n:,} ({tr}/{va}/{te} per class), "
        "drawn independently.\n"
        f"Regenerate: `python -m tlcourse data prepare {name}` or "
        f"`tlcourse.datasets.images.prepare({name!r}, seed=0)` (deterministic given the seed).\n"
    )


def _render_class(name: str, seed: int, tmp: Path, k: int) -> list[np.ndarray]:
    """Render and write class number ``k`` of glyph set ``name`` under ``tmp/<split>/<class>/``.

    Returns each split's images ``(n, 32, 32, 3)`` uint8.
    """
    spec = GLYPH_SETS[name]
    label = sorted(spec.chars)[k]
    out = []
    for s, count in enumerate(spec.per_class):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), s, k])
        images = np.stack([render(spec.chars[label], rng) for _ in range(count)])
        write_class(tmp / SPLITS[s] / label, images)
        out.append(images)
    return out


def build(
    name: str, seed: int, tmp: Path, workers: int | None
) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """Write glyph set ``name`` under ``tmp``; return the classes and each split's
    ``(images (N, 32, 32, 3) uint8, targets (N,))``.

    Classes are rendered in parallel processes; each has its own generator, so the pixels do
    not depend on the number of processes.
    """
    classes = sorted(GLYPH_SETS[name].chars)
    workers = workers or min(4, os.cpu_count() or 1)
    job = functools.partial(_render_class, name, seed, tmp)
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            per_class = list(pool.map(job, range(len(classes)), chunksize=2))
    else:
        per_class = [job(k) for k in range(len(classes))]
    out = []
    for s in range(len(SPLITS)):
        images = np.concatenate([parts[s] for parts in per_class])
        targets = np.concatenate([[k] * len(parts[s]) for k, parts in enumerate(per_class)])
        out.append((images, targets.astype(np.int64)))
    return classes, out


def sample(chars: list[str], per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` fresh renderings of every character in ``chars``, drawn from ``seed``.

    Returns pixels ``(len(chars) * per_class, 3, 32, 32)`` float in ``[0, 1]`` and labels (the
    index of the character in ``chars``), class by class.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    rng = np.random.default_rng(seed)
    images = np.stack([render(c, rng) for c in chars for _ in range(per_class)])
    labels = torch.arange(len(chars)).repeat_interleave(per_class)
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255, labels
