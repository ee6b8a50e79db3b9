"""The catalogue of course datasets: one :class:`DatasetInfo` per name.

Each modality module (``images``, ``speech``, ``text``, ``full``) exposes a module-level
``DATASETS: dict[str, DatasetInfo]``; :func:`all_datasets` gathers them and :func:`info`
looks one up with a close-match suggestion. ``python -m tlcourse data list`` prints them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlcourse.suggest import lookup, text_table

MODULES = ("images", "speech", "text", "full")


@dataclass(frozen=True)
class DatasetInfo:
    """What a learner needs to know before using a dataset.

    Attributes:
        name: catalogue key, e.g. ``"glyphs-digits"``.
        modality: ``"image"``, ``"speech"`` or ``"text"``.
        profile: ``"quick"`` (made or shipped by the course, offline) or ``"full"`` (downloaded).
        classes: number of classes.
        size: a short human description of the size, e.g. ``"50,000 images (32x32)"``.
        licence: the licence of the data.
        origin: where it comes from, in one sentence.
        datasheet: the datasheet text (origin, licence, size, classes, splits, how to regenerate).
        prepare: callable that builds or downloads it and returns its root folder.
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


def all_datasets() -> dict[str, DatasetInfo]:
    """Every catalogued dataset, by name (imports the modality modules)."""
    found: dict[str, DatasetInfo] = {}
    for module in MODULES:
        try:
            mod = importlib.import_module(f"tlcourse.datasets.{module}")
        except ModuleNotFoundError as err:
            if err.name == f"tlcourse.datasets.{module}":
                continue
            raise
        found.update(getattr(mod, "DATASETS", {}))
    return found


def info(name: str) -> DatasetInfo:
    """Look up a dataset by name; an unknown name raises ``KeyError`` naming the closest ones."""
    return lookup(all_datasets(), name, "dataset", "python -m tlcourse data list")


def prepare(name: str, **kwargs) -> Path:
    """Build (quick) or download (full) the dataset ``name``; return its root folder."""
    return info(name).prepare(**kwargs)


def format_table(catalogue: dict[str, DatasetInfo]) -> str:
    """The catalogue as a plain-text table."""
    header = ("name", "modality", "profile", "classes", "size", "licence")
    rows = [header] + [
        (d.name, d.modality, d.profile, str(d.classes), d.size, d.licence)
        for d in catalogue.values()
    ]
    return text_table(rows[0], rows[1:])


def cli_main(argv: list[str]) -> int:
    """``python -m tlcourse data list | info NAME | prepare NAME``."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse data")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue")
    sub.add_parser("info", help="print a dataset's datasheet").add_argument("name")
    prep = sub.add_parser("prepare", help="build (quick) or download (full) a dataset")
    prep.add_argument("name")
    prep.add_argument("--force", action="store_true", help="rebuild even if a complete copy exists")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(format_table(all_datasets()))
    elif args.command == "info":
        print(info(args.name).datasheet)
    else:
        print(prepare(args.name, **({"force": True} if args.force else {})))
    return 0
