"""The course's shared target tasks: one dataset, label budget, backbone and seed per task.

Chapters 04 (PyTorch) and 05 (Keras 3, fastai) fine-tune on the *same* task so their numbers
can sit in one table. A task names its data and backbone for both profiles; ``load(profile)``
returns the three splits, with the training split cut to ``labels_per_class`` examples per
class (the same examples for every chapter, drawn with ``seed``).

* quick: Greek-letter glyphs (24 classes), 20 labels per class, the course backbone.
* full: Oxford-IIIT Pets (37 breeds), every training image, ImageNet ResNet-18.

Introduced in notebooks/04_image_finetuning.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from tlcourse.config import choose, get_profile
from tlcourse.datasets import splits


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

        In the full profile this downloads Oxford-IIIT Pets on first use.
        """
        if get_profile(profile) == "full":
            from tlcourse.datasets import full

            if self.full_dataset != "oxford-pets":
                raise ValueError(
                    f"Full-profile dataset {self.full_dataset!r} is not wired; use 'oxford-pets'."
                )
            return full.prepare_pets(seed=self.seed)
        from tlcourse.datasets import images

        return images.prepare(self.dataset, verbose=False)

    def train_indices(
        self, targets: torch.Tensor | np.ndarray | list[int], profile: str | None = None
    ) -> np.ndarray:
        """Indices into the full training split that the task trains on, sorted, ``(k * C,)``."""
        k = self.budget(profile)
        if k is None:
            return np.arange(len(targets))
        return splits.labels_per_class_subset(targets, k, seed=self.seed)

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
        parts = [
            _split(self.root(profile), s, profile, t)
            for s, t in (
                ("train", train_transform or transform),
                ("val", transform),
                ("test", transform),
            )
        ]
        train = _subset(parts[0], self.train_indices(_targets(parts[0]), profile))
        return TaskData(train, parts[1], parts[2], list(parts[1].classes))


def _preprocessing(backbone: str) -> Callable:
    from tlcourse import zoo

    return zoo.preprocessing(backbone)


def _split(root: Path, split: str, profile: str, transform: Callable | None) -> Dataset:
    if profile == "full":
        from tlcourse.datasets.imagefolder import image_folder

        return image_folder(root, split, transform)
    from tlcourse.datasets.imagefolder import load_tensors

    return load_tensors(root, split, transform)


def _targets(dataset: Dataset) -> np.ndarray:
    return np.asarray(dataset.targets)


def _subset(dataset: Dataset, indices: np.ndarray) -> Dataset:
    """``dataset`` cut to ``indices``, keeping ``.classes`` and ``.targets``."""
    if hasattr(dataset, "subset"):
        return dataset.subset(indices)
    sub = Subset(dataset, indices.tolist())
    sub.classes = list(dataset.classes)
    sub.targets = [dataset.targets[i] for i in indices]
    return sub


IMAGE_TASK = ImageTask(dataset="glyphs-greek", labels_per_class=20, backbone="glyphnet-s", seed=0)
"""The image task of chapters 04 and 05: 20 labelled Greek glyphs per class, course backbone."""
