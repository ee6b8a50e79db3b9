"""Quick-profile image datasets, written as ImageFolder trees in the course cache.

* ``glyphs-latin`` (source, 52 classes): Latin letters to pretrain the course backbones on.
* ``glyphs-digits``, ``glyphs-greek``, ``glyphs-cyrillic`` (targets): new classes, same world.
* ``sklearn-digits`` (target): scikit-learn's bundled handwritten digits, a real domain shift.

Each lives in ``cache_dir("data", NAME)/{train,val,test}/<class>/<nnnnn>.png`` and is built
deterministically from a seed (``prepare(NAME, seed=0)``, or ``python -m tlcourse data prepare
NAME``), so torchvision, fastai and Keras load it like any photo folder. The tree and its
loaders (with checks that name the fix) live in :mod:`tlcourse.datasets.imagefolder`.

Introduced in notebooks/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import shutil
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.datasets import ImageFolder

from tlcourse import paths
from tlcourse.datasets import glyphs, imagefolder, splits
from tlcourse.datasets.catalog import DatasetInfo
from tlcourse.datasets.imagefolder import (
    MARKER,
    SPLITS,
    ImageFolderError,
    TensorImageDataset,
    check_image_folder,
    save_tensor_cache,
    tensor_loader,
)

__all__ = [
    "DATASETS", "SPLITS", "GlyphSet", "ImageFolderError", "TensorImageDataset",
    "check_image_folder", "dataset_root", "image_folder", "is_complete", "load_tensors", "prepare",
    "resolve", "tensor_loader",
]  # fmt: skip

VERSION = 2
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
SKLEARN_DIGITS_FRACTIONS = (0.6, 0.2, 0.2)


def dataset_root(name: str) -> Path:
    """Where dataset ``name`` lives: ``cache_dir("data", name)`` (not created)."""
    return paths.cache_dir("data") / name


def _marker(name: str, seed: int) -> dict:
    return {"name": name, "version": VERSION, "seed": seed}


def is_complete(name: str, seed: int = 0) -> bool:
    """True if the tree of ``name`` was fully written by this version with this ``seed``."""
    try:
        found = json.loads((dataset_root(name) / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return found == _marker(name, seed)


def prepare(
    name: str,
    *,
    seed: int = 0,
    force: bool = False,
    verbose: bool = True,
    workers: int | None = None,
) -> Path:
    """Build dataset ``name`` in the cache (unless already complete); return its root folder.

    The tree is written to a temporary folder and renamed into place at the end, with a marker
    file holding the version and ``seed``: a half-written or differently seeded tree is rebuilt.
    Glyphs are rendered in ``workers`` processes (default: up to 4); the pixels do not depend
    on it. Building every default set takes about a minute on a 2-core laptop CPU.
    """
    if name not in _BUILDERS:
        raise KeyError(f"{name!r} is not a quick image dataset; choose one of {sorted(_BUILDERS)}.")
    root = dataset_root(name)
    if not force and is_complete(name, seed):
        return root
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root.parent))
    try:
        classes, arrays = _BUILDERS[name](seed, tmp, workers)
        (tmp / MARKER).write_text(json.dumps(_marker(name, seed)))
        for split, (images, targets) in zip(SPLITS, arrays, strict=True):
            save_tensor_cache(tmp, split, images, targets, classes)
        _swap_in(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"Built {name} (seed {seed}) in {time.perf_counter() - start:.1f} s at {root}")
    return root


def resolve(source: str | os.PathLike) -> Path:
    """The root folder of ``source``: a course dataset name (built if needed) or a folder path."""
    if isinstance(source, str) and source in _BUILDERS:
        return prepare(source, verbose=False)
    if isinstance(source, str) and not Path(source).exists() and "/" not in source:
        close = difflib.get_close_matches(source, list(_BUILDERS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise KeyError(
            f"Unknown image dataset {source!r}.{hint} Names: {', '.join(_BUILDERS)}; or pass a folder path."
        )
    return Path(source)


def image_folder(
    source: str | os.PathLike, split: str = "train", transform: Callable | None = None
) -> ImageFolder:
    """Split ``split`` of a course dataset (by name) or of any ImageFolder tree, as an ``ImageFolder``.

    Items are ``(transform(PIL image), class index)``. The tree is checked first; bad layouts,
    empty class folders and unreadable images raise errors that name the fix.
    """
    return imagefolder.image_folder(resolve(source), split, transform)


def load_tensors(
    source: str | os.PathLike, split: str = "train", transform: Callable | None = None
) -> TensorImageDataset:
    """Split ``split`` decoded once into memory: ``images (N, 3, 32, 32)`` uint8, ``targets (N,)``.

    Much faster than :func:`image_folder` for short runs; the decoded split is cached.
    """
    return imagefolder.load_tensors(resolve(source), split, transform)


def _swap_in(tmp: Path, root: Path) -> None:
    """Replace ``root`` by the finished tree ``tmp`` (the old tree is removed first)."""
    if root.exists():
        old = root.with_name(f".{root.name}.old-{os.getpid()}")
        os.replace(root, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(tmp, root)


def _write_class(folder: Path, images: np.ndarray) -> None:
    """Write ``images (n, H, W, 3)`` uint8 as ``folder/<nnnnn>.png``."""
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png", compress_level=1)


def _render_class(name: str, seed: int, tmp: Path, k: int) -> list[np.ndarray]:
    """Render and write class number ``k`` of glyph set ``name`` under ``tmp/<split>/<class>/``.

    Returns each split's images ``(n, 32, 32, 3)`` uint8.
    """
    spec = GLYPH_SETS[name]
    label = sorted(spec.chars)[k]
    out = []
    for s, count in enumerate(spec.per_class):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), s, k])
        images = np.stack([glyphs.render(spec.chars[label], rng) for _ in range(count)])
        _write_class(tmp / SPLITS[s] / label, images)
        out.append(images)
    return out


def _build_glyphs(
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


def _build_sklearn_digits(
    seed: int, tmp: Path, workers: int | None = None
) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """scikit-learn's 8x8 digits, upscaled to 32x32 RGB (dark ink on white), split 60/20/20."""
    from sklearn.datasets import load_digits

    data = load_digits()
    ink = (data.images / 16.0 * 255).astype(np.uint8)
    big = [np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR)) for im in ink]
    rgb = np.repeat(255 - np.stack(big)[..., None], 3, axis=-1)
    parts = splits.stratified_split(data.target, SKLEARN_DIGITS_FRACTIONS, seed=seed)
    arrays = [(rgb[idx], data.target[idx].astype(np.int64)) for idx in parts]
    for split, (images, targets) in zip(SPLITS, arrays, strict=True):
        for d in range(10):
            _write_class(tmp / split / str(d), images[targets == d])
    return [str(d) for d in range(10)], arrays


_BUILDERS = {name: functools.partial(_build_glyphs, name) for name in GLYPH_SETS}
_BUILDERS["sklearn-digits"] = _build_sklearn_digits


def _glyph_datasheet(name: str, spec: GlyphSet) -> str:
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


SKLEARN_DIGITS_SHEET = (
    "# sklearn-digits\n\nRole: target task with a real domain shift (handwriting, no colour).\n"
    "Origin: scikit-learn's bundled copy of the UCI 'Optical Recognition of Handwritten Digits' "
    "test set (1,797 images, 8x8, 16 grey levels), upscaled bilinearly to 32x32 and written as "
    "dark ink on white RGB.\n"
    "Licence: BSD-3-Clause (scikit-learn); the UCI data is CC BY 4.0.\n"
    "Size: 1,797 RGB images of 32x32 px, PNG.\nClasses (10): 0-9.\n"
    "Splits: stratified 60/20/20 train/val/test (1,078 / 359 / 360 images), from the seed.\n"
    "Regenerate: `python -m tlcourse data prepare sklearn-digits`.\n"
)


def _info(name: str) -> DatasetInfo:
    if name == "sklearn-digits":
        return DatasetInfo(name, "image", "quick", 10, "1,797 images (32x32 RGB)", "BSD-3-Clause",
                           "scikit-learn's bundled UCI handwritten digits, upscaled",
                           SKLEARN_DIGITS_SHEET, functools.partial(prepare, name))  # fmt: skip
    spec = GLYPH_SETS[name]
    total = len(spec.chars) * sum(spec.per_class)
    return DatasetInfo(
        name, "image", "quick", len(spec.chars), f"{total:,} images (32x32 RGB)",
        "CC0 images; free font licences", "glyphs rendered from matplotlib's fonts",
        _glyph_datasheet(name, spec), functools.partial(prepare, name),
    )  # fmt: skip


DATASETS: dict[str, DatasetInfo] = {name: _info(name) for name in _BUILDERS}
