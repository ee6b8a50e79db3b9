"""The course's shared target tasks, one task type per modality: dataset, label budget, backbone.

A task names its data (and backbone) for both profiles; ``load(profile)`` returns
:class:`TaskData` ``(train, val, test, classes)`` through the dataset door
(:func:`tlcourse.datasets.catalog.load`), so chapters that share a task share its numbers.

* :class:`ImageTask` / :data:`IMAGE_TASK` (chapters 04 and 05, PyTorch, Keras 3, fastai):
  quick: Greek-letter glyphs (24 classes), 20 labels per class, the course backbone;
  full: Oxford-IIIT Pets (37 breeds), every training image, ImageNet ResNet-18.
* :class:`TextTask` / :data:`TEXT_TASK` (chapter 07): quick: the ``tickets`` corpus;
  full: SST-2 (its labelled dev set is the test split; val is held out of train).

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from tlcourse.config import choose, get_profile
from tlcourse.datasets import catalog, images
from tlcourse.datasets.splits import labels_per_class_subset, stratified_split, subset, targets_of


class TaskData(NamedTuple):
    """The splits of a task: ``train`` (cut to the label budget), ``val``, ``test``, ``classes``."""

    train: Dataset
    val: Dataset
    test: Dataset
    classes: list[str]


@dataclass(frozen=True)
class ImageTask:
    """An image target task, for both profiles.

    Attributes:
        dataset: quick-profile dataset name (``tlcourse.datasets.images``), e.g. ``"glyphs-greek"``.
        labels_per_class: training examples kept per class in the quick profile.
        backbone: quick-profile zoo name of the pretrained backbone.
        seed: seed of the label subset (and the seed chapters train with).
        full_dataset: full-profile dataset (only ``"oxford-pets"`` is wired).
        full_backbone: full-profile zoo name (a torchvision ImageNet entry).
        full_labels_per_class: label budget in the full profile (``None``: every training image).
    """

    dataset: str
    labels_per_class: int
    backbone: str
    seed: int = 0
    full_dataset: str = "oxford-pets"
    full_backbone: str = "resnet18"
    full_labels_per_class: int | None = None

    def backbone_for(self, profile: str | None = None) -> str:
        """The zoo name of the backbone in ``profile`` (default: the active profile)."""
        return choose(profile, quick=self.backbone, full=self.full_backbone)

    def dataset_for(self, profile: str | None = None) -> str:
        """The dataset name in ``profile``."""
        return choose(profile, quick=self.dataset, full=self.full_dataset)

    def budget(self, profile: str | None = None) -> int | None:
        """Training labels per class in ``profile`` (``None``: all)."""
        return choose(profile, quick=self.labels_per_class, full=self.full_labels_per_class)

    def root(self, profile: str | None = None) -> Path:
        """The ImageFolder root (``train/val/test/<class>/``) of the task's data, built if needed.

        In the full profile this downloads the full dataset on first use.
        """
        return images.root(self.dataset_for(profile))

    def train_indices(
        self, targets: torch.Tensor | np.ndarray | list[int], profile: str | None = None
    ) -> np.ndarray:
        """Indices into the full training split that the task trains on, sorted, ``(k * C,)``."""
        k = self.budget(profile)
        if k is None:
            return np.arange(len(targets))
        return labels_per_class_subset(targets, k, seed=self.seed)

    def load(
        self,
        profile: str | None = None,
        *,
        transform: Callable | None = None,
        train_transform: Callable | None = None,
    ) -> TaskData:
        """The task's splits as PyTorch datasets of ``(image (3, H, W), label)``.

        ``transform`` is applied to every split (default: the backbone's ``zoo.preprocessing``);
        ``train_transform``, if given, replaces it for the training split (augmentation). The
        quick profile holds the images in memory (``load_tensors``); the full profile reads the
        ImageFolder from disk, so it needs a transform that resizes (the zoo's does).
        """
        profile = get_profile(profile)
        transform = (
            transform if transform is not None else _preprocessing(self.backbone_for(profile))
        )
        name = self.dataset_for(profile)
        train, val, test = (
            catalog.load(name, split, t)
            for split, t in (
                ("train", train_transform or transform),
                ("val", transform),
                ("test", transform),
            )
        )
        train = subset(train, self.train_indices(targets_of(train), profile))
        return TaskData(train, val, test, list(val.classes))


def _preprocessing(backbone: str) -> Callable:
    from tlcourse import zoo

    return zoo.preprocessing(backbone)


@dataclass(frozen=True)
class TextTask:
    """A text classification task, for both profiles.

    Attributes:
        dataset: quick-profile dataset name (``"tickets"``).
        full_dataset: full-profile dataset name (``"sst2"``: no labelled test split, so its
            labelled ``val`` split serves as test and ``val_fraction`` of train is held out).
        val_fraction: share of the full training split held out as ``val``.
        seed: seed of the held-out draw.
    """

    dataset: str = "tickets"
    full_dataset: str = "sst2"
    val_fraction: float = 0.05
    seed: int = 0

    def load(self, profile: str | None = None) -> TaskData:
        """The task's splits as :class:`~tlcourse.datasets.text.TextSplit` datasets."""
        if get_profile(profile) == "quick":
            train, val, test = (catalog.load(self.dataset, s) for s in ("train", "val", "test"))
            return TaskData(train, val, test, list(train.classes))
        pool, test = (
            catalog.load(self.full_dataset, "train"),
            catalog.load(self.full_dataset, "val"),
        )
        fractions = (1 - self.val_fraction, self.val_fraction)
        keep, held_out = stratified_split(targets_of(pool), fractions, seed=self.seed)
        return TaskData(subset(pool, keep), subset(pool, held_out), test, list(pool.classes))


IMAGE_TASK = ImageTask(dataset="glyphs-greek", labels_per_class=20, backbone="glyphnet-s", seed=0)
"""The image task of chapters 04 and 05: 20 labelled Greek glyphs per class, course backbone."""

TEXT_TASK = TextTask()
"""The text task of chapter 07: the ``tickets`` corpus (quick), SST-2 (full)."""
