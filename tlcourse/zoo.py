"""Pretrained backbones by name: builder, weights, preprocessing, parameter count, card.

Entries come from the modules that define the architectures (each exposes
``ZOO: dict[str, ZooEntry]``); :func:`entries` gathers them, :func:`load` builds a
:class:`~tlcourse.nets.Classifier` with pretrained backbone weights and a fresh head.
``python -m tlcourse zoo list`` prints the catalogue; ``zoo build NAME`` trains a course backbone.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

ENTRY_MODULES = ("tlcourse.backbones", "tlcourse.audio", "tlcourse.hf")


@dataclass(frozen=True)
class ZooEntry:
    """One pretrained model of the zoo.

    Attributes:
        name: catalogue key, e.g. ``"glyphnet-s"``.
        modality: ``"image"``, ``"audio"`` or ``"text"``.
        profile: ``"quick"`` (shipped/built by the course, offline) or ``"full"`` (downloaded).
        build: ``build(num_classes) -> nn.Module`` (a Classifier) with random weights.
        weights: where the pretrained weights come from (asset file, torchvision enum, hub id).
        mean, std: per-channel input normalisation the backbone was trained with.
        input_size: expected input size, e.g. ``(3, 32, 32)``.
        licence: licence of the weights.
        card: the model card (Markdown): data, recipe, source accuracy, build time.
        load_backbone: ``load_backbone() -> nn.Module`` with pretrained weights loaded.
        train: ``train(seed) -> dict`` trains and writes the weights (course backbones only).
    """

    name: str
    modality: str
    profile: str
    build: Callable
    weights: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, ...]
    licence: str
    card: str
    load_backbone: Callable
    train: Callable | None = None
