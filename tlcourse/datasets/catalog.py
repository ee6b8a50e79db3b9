"""The door to every dataset: a name or a folder and a split in, a PyTorch ``Dataset`` out.

:func:`load` is the one way from ``(dataset name or folder, split)`` to a ``Dataset``, for every
modality and both profiles; splits are named ``train`` / ``val`` / ``test`` everywhere. Each
modality module (:mod:`~tlcourse.datasets.images`, :mod:`~tlcourse.datasets.speech`,
:mod:`~tlcourse.datasets.text`) declares its datasets in ``DATASETS: dict[str, DatasetInfo]``;
:func:`info` looks one up with a close-match suggestion. ``python -m tlcourse data list`` prints
them.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from tlcourse.datasets import imagefolder, images, speech, text
from tlcourse.datasets.info import DatasetInfo
from tlcourse.suggest import lookup, text_table


def all_datasets() -> dict[str, DatasetInfo]:
    """Every catalogued dataset, by name, from the modality modules imported above."""
    return {**images.DATASETS, **speech.DATASETS, **text.DATASETS}


def info(name: str) -> DatasetInfo:
    """Look up a dataset by name; an unknown name raises ``KeyError`` naming the closest ones."""
    return lookup(all_datasets(), name, "dataset", "python -m tlcourse data list")


def prepare(name: str, **kwargs) -> Path:
    """Build (quick) or download (full) the dataset ``name``; return its root folder."""
    return info(name).prepare(**kwargs)


def load(
    source: str | os.PathLike, split: str = "train", transform: Callable | None = None, **kwargs
) -> Dataset:
    """Split ``split`` (``"train"``, ``"val"`` or ``"test"``) of ``source`` as a ``Dataset``.

    ``source`` is a catalogue name (built or downloaded on first use; see ``python -m tlcourse
    data list``) or a folder: an ImageFolder tree ``split/<class>/<image>`` or a Speech
    Commands-style folder ``<word>/*.wav`` with ``validation_list.txt`` / ``testing_list.txt``.
    Items are ``(transform(x), label)``: images ``(3, H, W)``, waveforms ``(1, S)``, texts
    (``str``, no transform). Every result has ``.classes`` and ``.targets``. ``kwargs`` go to the
    modality's loader (e.g. ``noise_prob`` for speech).

    Introduced in notebooks/00_welcome.ipynb.
    """
    if isinstance(source, str) and not _is_path(source):
        return info(source).load(split, transform, **kwargs)
    root = Path(source)
    if (root / speech.LIST_FILES["val"]).is_file() or (root / speech.NOISE_DIR).is_dir():
        return speech.SpeechCommands(root, split, transform=transform, **kwargs)
    return imagefolder.image_folder(root, split, transform)


def _is_path(source: str) -> bool:
    """True if ``source`` reads as a folder path rather than a catalogue name."""
    return os.sep in source or "/" in source or Path(source).exists()


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
