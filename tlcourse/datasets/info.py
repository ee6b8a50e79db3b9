"""What every dataset module shares: the catalogue record, the split names, the cache folder.

One split vocabulary everywhere (code, folders on disk, prose): ``train`` / ``val`` / ``test``.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from tlcourse.paths import cache_dir

SPLITS = ("train", "val", "test")
_OLD_NAMES = {"validation": "val", "valid": "val", "testing": "test", "training": "train"}


@dataclass(frozen=True)
class DatasetInfo:
    """What a learner needs to know before using a dataset, and how to get it.

    Attributes:
        name: catalogue key, e.g. ``"glyphs-digits"``.
        modality: ``"image"``, ``"speech"`` or ``"text"``.
        profile: ``"quick"`` (made or shipped by the course, offline) or ``"full"`` (downloaded).
        classes: number of classes.
        size: a short human description of the size, e.g. ``"50,000 images (32x32)"``.
        licence: the licence of the data.
        origin: where it comes from, in one sentence.
        datasheet: the datasheet text (origin, licence, size, classes, splits, how to regenerate).
        prepare: ``prepare(**kwargs) -> Path`` builds or downloads it and returns its root folder.
        load: ``load(split, transform=None, **kwargs) -> Dataset`` (see
            :func:`tlcourse.datasets.catalog.load`, the door that calls it).
        splits: the splits it has (a subset of :data:`SPLITS`).
    """

    name: str
    modality: str
    profile: str
    classes: int
    size: str
    licence: str
    origin: str
    datasheet: str
    prepare: Callable[..., Path]
    load: Callable[..., Dataset]
    splits: tuple[str, ...] = SPLITS


def check_split(
    split: str,
    allowed: Sequence[str] = SPLITS,
    what: str = "this dataset",
    error: type[ValueError] = ValueError,
) -> str:
    """Return ``split`` if ``what`` has it; otherwise raise ``error`` naming the fix."""
    if split in allowed:
        return split
    hint = f" (the course calls it {_OLD_NAMES[split]!r})" if split in _OLD_NAMES else ""
    raise error(f"{what} has no split {split!r}{hint}; use one of {', '.join(allowed)}.")


def dataset_root(name: str) -> Path:
    """Where dataset ``name`` lives: ``cache_dir("data") / name`` (not created)."""
    return cache_dir("data") / name
