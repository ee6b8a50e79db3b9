"""Image datasets as ImageFolder trees (``root/{train,val,test}/<class>/<image>``) in the cache.

Quick profile, built by the course from a seed (``prepare(NAME, seed=0)`` or ``python -m
tlcourse data prepare NAME``):

* ``glyphs-latin`` (source, 52 classes): Latin letters to pretrain the course backbones on.
* ``glyphs-digits``, ``glyphs-greek``, ``glyphs-cyrillic`` (targets): new classes, same world.
* ``sklearn-digits`` (target): scikit-learn's bundled handwritten digits, a real domain shift.

Full profile, downloaded once with checksums (:mod:`tlcourse.download`):

* ``oxford-pets`` (37 breeds) -> ``train/val/test/<breed>/*.jpg``;
* ``hymenoptera`` (ants / bees) -> its own ``train/val/{ants,bees}`` tree.

Every tree is written atomically (:func:`tlcourse.atomic.build_atomically`), so torchvision,
fastai and Keras load it like any photo folder; :func:`load` is what the catalogue's door
(:func:`tlcourse.datasets.catalog.load`) calls. The tree checks and loaders live in
:mod:`tlcourse.datasets.imagefolder`.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from tlcourse.atomic import build_atomically
from tlcourse.datasets import glyphs, imagefolder, splits
from tlcourse.datasets.glyphs import GLYPH_SETS, GlyphSet
from tlcourse.datasets.imagefolder import MARKER, SPLITS
from tlcourse.datasets.info import DatasetInfo, check_split, dataset_root
from tlcourse.download import (
    LayoutError,
    Resource,
    checksums_text,
    fetch_and_extract,
    require_paths,
)

__all__ = [
    "DATASETS",
    "GLYPH_SETS",
    "GlyphSet",
    "is_complete",
    "load",
    "prepare",
    "prepare_hymenoptera",
    "prepare_pets",
]

VERSION = 2
SKLEARN_DIGITS_FRACTIONS = (0.6, 0.2, 0.2)


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
    """Build quick dataset ``name`` in the cache (unless already complete); return its root folder.

    The tree is built in a temporary folder and swapped in when complete, with a marker file
    holding the version and ``seed``: a half-written or differently seeded tree is rebuilt, and
    a failed build leaves the previous tree as it was. Glyphs are rendered in ``workers``
    processes (default: up to 4); the pixels do not depend on it. Building every default set
    takes about a minute on a 2-core laptop CPU.
    """
    if name not in _BUILDERS:
        raise KeyError(f"{name!r} is not a quick image dataset; choose one of {sorted(_BUILDERS)}.")
    root = dataset_root(name)
    if not force and is_complete(name, seed):
        return root
    start = time.perf_counter()
    build_atomically(root, functools.partial(_build, name, seed, workers), replace=True)
    if verbose:
        print(f"Built {name} (seed {seed}) in {time.perf_counter() - start:.1f} s at {root}")
    return root


def _build(name: str, seed: int, workers: int | None, tmp: Path) -> None:
    """Write the tree of ``name`` under ``tmp``: class folders, the marker, then each split's
    decoded-tensor cache, read back from the folders in the order every later load uses (the
    cache's fingerprint holds the marker, so the marker comes first)."""
    _BUILDERS[name](seed, tmp, workers)
    (tmp / MARKER).write_text(json.dumps(_marker(name, seed)))
    for split in SPLITS:
        imagefolder.load_tensors(tmp, split)


def root(name: str) -> Path:
    """The ImageFolder root of image dataset ``name``, built (quick) or downloaded (full) if needed."""
    if name in _BUILDERS:
        return prepare(name, verbose=False)
    if name not in FULL_DATASETS:
        raise KeyError(f"{name!r} is not an image dataset; choose one of {sorted(DATASETS)}.")
    return prepare_pets() if name == "oxford-pets" else prepare_hymenoptera()


def load(name: str, split: str = "train", transform: Callable | None = None) -> Dataset:
    """Split ``split`` of image dataset ``name``, items ``(transform(image), label)``.

    Quick sets are decoded once into memory (a ``TensorImageDataset``: ``images (N, 3, 32,
    32)`` uint8); full sets are read from disk (an ``ImageFolder``, so give a resizing
    ``transform`` such as the backbone's ``zoo.preprocessing(name)``).
    """
    if name in _BUILDERS:
        return imagefolder.load_tensors(root(name), split, transform)
    check_split(split, FULL_DATASETS[name].splits, name)
    return imagefolder.image_folder(root(name), split, transform)


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
            imagefolder.write_class(tmp / split / str(d), images[targets == d])
    return [str(d) for d in range(10)], arrays


_BUILDERS = {name: functools.partial(glyphs.build, name) for name in GLYPH_SETS}
_BUILDERS["sklearn-digits"] = _build_sklearn_digits


# --- full profile: real photos, downloaded ---------------------------------------------------

_TFDS = "tensorflow/datasets"
PETS_RESOURCES = (
    Resource(
        name="images.tar.gz",
        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        sha256="67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        size=791_918_971,
        mirrors=("https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",),
        source=f"{_TFDS}: tensorflow_datasets/datasets/oxford_iiit_pet/checksums.tsv",
    ),
    Resource(
        name="annotations.tar.gz",
        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
        sha256="52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
        size=19_173_078,
        mirrors=("https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz",),
        source=f"{_TFDS}: tensorflow_datasets/datasets/oxford_iiit_pet/checksums.tsv",
    ),
)
HYMENOPTERA_RESOURCE = Resource(
    name="hymenoptera_data.zip",
    url="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
    sha256="fbc41b31d544714d18dd1230b1e2b455e1557766e13e67f9f5a7a23af7c02209",
    source="pytorch/tutorials: .jenkins/download_data.py",
)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk space), or copy where links are not allowed."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def prepare_pets(
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    resources: tuple[Resource, Resource] = PETS_RESOURCES,
    progress: bool | None = None,
) -> Path:
    """Download Oxford-IIIT Pets and return an ImageFolder root with ``train/val/test/<breed>``.

    ``test`` is the official test split; ``val`` takes ``val_fraction`` of each breed of the
    official trainval split (chosen with ``seed``), ``train`` the rest. 37 breeds.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be between 0 and 1, e.g. 0.2.")
    root = dataset_root("oxford-pets")
    images = fetch_and_extract(resources[0], root / "raw-images", progress=progress) / "images"
    notes = fetch_and_extract(resources[1], root / "raw-annotations", progress=progress)
    notes = notes / "annotations"
    fix = f"Delete {root} and run again to download a fresh copy."
    require_paths(images.parent, ["images"], what="Oxford-IIIT Pets images", fix=fix)
    require_paths(
        notes.parent,
        ["annotations/trainval.txt", "annotations/test.txt"],
        what="Oxford-IIIT Pets annotations",
        fix=fix,
    )
    splits = pets_splits(notes, val_fraction=val_fraction, seed=seed)
    tree = root / f"imagefolder-val{round(val_fraction * 100)}-seed{seed}"
    return build_atomically(tree, lambda tmp: _write_imagefolder(splits, images, tmp))


def read_pets_list(path: Path) -> list[str]:
    """Image names (without ``.jpg``) of a Pets split file (``trainval.txt`` or ``test.txt``).

    Each line reads ``Abyssinian_100 1 1 1`` (image, class id, species, breed id); ``#`` lines
    are comments.
    """
    lines = Path(path).read_text().splitlines()
    return [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")]


def pets_breed(image_name: str) -> str:
    """The breed of a Pets image name: ``"american_bulldog_12"`` -> ``"american_bulldog"``."""
    return image_name.rsplit("_", 1)[0]


def pets_splits(annotations: Path, *, val_fraction: float, seed: int) -> dict[str, list[str]]:
    """Image names per split: the official test split, trainval cut into train and val."""
    by_breed: dict[str, list[str]] = defaultdict(list)
    for name in read_pets_list(Path(annotations) / "trainval.txt"):
        by_breed[pets_breed(name)].append(name)
    rng = random.Random(seed)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for breed in sorted(by_breed):
        names = sorted(by_breed[breed])
        rng.shuffle(names)
        n_val = max(1, round(len(names) * val_fraction))
        splits["val"] += names[:n_val]
        splits["train"] += names[n_val:]
    splits["test"] = read_pets_list(Path(annotations) / "test.txt")
    return splits


def _write_imagefolder(splits: dict[str, list[str]], images: Path, out: Path) -> None:
    missing = [n for names in splits.values() for n in names if not (images / f"{n}.jpg").is_file()]
    if missing:
        raise LayoutError(
            f"{len(missing)} images listed in the Pets annotations are not in {images} "
            f"(e.g. {missing[:3]}). Delete {images.parent} and run again."
        )
    for split, names in splits.items():
        for name in names:
            folder = out / split / pets_breed(name)
            folder.mkdir(parents=True, exist_ok=True)
            _link_or_copy(images / f"{name}.jpg", folder / f"{name}.jpg")
    counts = {split: len(names) for split, names in splits.items()}
    (out / MARKER).write_text(json.dumps({"name": "oxford-pets", "images": counts}) + "\n")


def prepare_hymenoptera(
    *, resource: Resource = HYMENOPTERA_RESOURCE, progress: bool | None = None
) -> Path:
    """Download the ants / bees folders; return the ImageFolder root with ``train`` and ``val``.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    root = dataset_root("hymenoptera")
    data = fetch_and_extract(resource, root / "raw", progress=progress) / "hymenoptera_data"
    expected = [f"{split}/{cls}" for split in ("train", "val") for cls in ("ants", "bees")]
    require_paths(
        data,
        expected,
        what="The hymenoptera data",
        fix=f"Delete {root} and run again to download a fresh copy.",
    )
    return data


# --- the catalogue ----------------------------------------------------------------------------

PETS_DATASHEET = f"""Oxford-IIIT Pets (full profile)
Origin: Parkhi, Vedaldi, Zisserman and Jawahar, "Cats and Dogs", CVPR 2012; Visual Geometry
  Group, University of Oxford (https://www.robots.ox.ac.uk/~vgg/data/pets/).
Licence: annotations CC BY-SA 4.0; the copyright of the images stays with their owners.
Size: 7,349 photos of 37 breeds (12 cat, 25 dog), about 200 per breed, various sizes;
  792 MB + 19 MB of archives. A handful are not RGB JPEGs: open them with .convert("RGB")
  (torchvision's ImageFolder does).
Classes: 37 breeds, folder names from the file names (e.g. Abyssinian, american_bulldog).
Splits: test = the official test.txt (3,669); the official trainval.txt (3,680) is cut per
  breed into val (20 % by default, seeded) and train.
Layout made: <cache>/data/oxford-pets/imagefolder-val20-seed0/{{train,val,test}}/<breed>/*.jpg
  (hard links to the unpacked images); trimaps and boxes stay in raw-annotations/.
Regenerate: delete <cache>/data/oxford-pets and call prepare_pets() again.
Checksums:
{checksums_text(*PETS_RESOURCES)}
"""

HYMENOPTERA_DATASHEET = f"""Hymenoptera: ants and bees (full profile)
Origin: the data of the PyTorch transfer-learning tutorial, a small subset of ImageNet
  (https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html).
Licence: ImageNet images; the copyright stays with their owners (ImageNet terms: non-commercial
  research and education).
Size: about 120 training and 75 validation photos per class.
Classes: 2 (ants, bees).
Splits: train and val as shipped (no test split: hold out part of train if you need one).
Layout: <cache>/data/hymenoptera/raw/hymenoptera_data/{{train,val}}/{{ants,bees}}/*.jpg.
Regenerate: delete <cache>/data/hymenoptera and call prepare_hymenoptera() again.
Checksum:
{checksums_text(HYMENOPTERA_RESOURCE)}
"""

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
        return DatasetInfo(
            name,
            "image",
            "quick",
            10,
            "1,797 images (32x32 RGB)",
            "BSD-3-Clause",
            "scikit-learn's bundled UCI handwritten digits, upscaled",
            SKLEARN_DIGITS_SHEET,
            functools.partial(prepare, name),
            functools.partial(load, name),
        )
    spec = glyphs.GLYPH_SETS[name]
    total = len(spec.chars) * sum(spec.per_class)
    return DatasetInfo(
        name,
        "image",
        "quick",
        len(spec.chars),
        f"{total:,} images (32x32 RGB)",
        "CC0 images; free font licences",
        "glyphs rendered from matplotlib's fonts",
        glyphs.datasheet(name, spec),
        functools.partial(prepare, name),
        functools.partial(load, name),
    )


FULL_DATASETS: dict[str, DatasetInfo] = {
    "oxford-pets": DatasetInfo(
        name="oxford-pets", modality="image", profile="full", classes=37,
        size="7,349 photos (792 MB)", licence="CC BY-SA 4.0 (annotations)",
        origin="Oxford VGG cats and dogs, 37 breeds (Parkhi et al., 2012).",
        datasheet=PETS_DATASHEET, prepare=prepare_pets, load=functools.partial(load, "oxford-pets"),
    ),
    "hymenoptera": DatasetInfo(
        name="hymenoptera", modality="image", profile="full", classes=2,
        size="~400 photos", licence="ImageNet terms",
        origin="Ants and bees from the PyTorch transfer-learning tutorial (ImageNet subset).",
        datasheet=HYMENOPTERA_DATASHEET, prepare=prepare_hymenoptera,
        load=functools.partial(load, "hymenoptera"), splits=("train", "val"),
    ),
}  # fmt: skip

DATASETS: dict[str, DatasetInfo] = {**{name: _info(name) for name in _BUILDERS}, **FULL_DATASETS}
