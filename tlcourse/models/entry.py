"""What a model family declares to the zoo: one :class:`ZooEntry` per pretrained model.

A family file (``tlcourse/models/<family>.py``) exposes ``ZOO: dict[str, ZooEntry]``; the
registry :mod:`tlcourse.zoo` imports it and lists it in ``FAMILIES``.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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
        resize_size: shorter side to resize to before a centre crop to ``input_size`` (None:
            inputs are already ``input_size``); :func:`tlcourse.augment.for_backbone` builds it.
        interpolation: the resize's ``InterpolationMode`` value, e.g. ``"bilinear"``.
        num_params: parameter count of the backbone when known without building it.
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
    resize_size: int | None = None
    interpolation: str = "bilinear"
    num_params: int | None = None
    available: Callable[[], bool] | None = None
