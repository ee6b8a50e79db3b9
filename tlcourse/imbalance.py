"""Class imbalance: a long-tailed subset of a balanced dataset, and the two standard remedies,
a class-weighted loss and a class-balanced sampler.

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn
from torch.utils.data import WeightedRandomSampler


def _labels(targets: ArrayLike) -> np.ndarray:
    labels = np.asarray(targets.tolist() if hasattr(targets, "tolist") else targets).astype(
        np.int64
    )
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(
            f"targets must be a non-empty 1-D array of class labels, got shape {labels.shape}."
        )
    return labels


def long_tail_counts(num_classes: int, max_per_class: int, min_per_class: int) -> list[int]:
    """Examples per class falling geometrically from ``max_per_class`` (class 0) to
    ``min_per_class`` (the last class): the long tail of real datasets.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    if not 1 <= min_per_class <= max_per_class:
        raise ValueError(
            f"Need 1 <= min_per_class <= max_per_class, got {min_per_class}, {max_per_class}."
        )
    if num_classes == 1:
        return [max_per_class]
    ratio = (min_per_class / max_per_class) ** (1 / (num_classes - 1))
    return [max(min_per_class, round(max_per_class * ratio**c)) for c in range(num_classes)]


def imbalanced_subset(targets: ArrayLike, counts: list[int], seed: int = 0) -> np.ndarray:
    """Sorted indices keeping ``counts[c]`` randomly chosen examples of each class ``c``.

    Raises ``ValueError`` naming a class that has fewer examples than asked for.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    labels, rng = _labels(targets), np.random.default_rng(seed)
    classes = np.unique(labels)
    if len(counts) != len(classes):
        raise ValueError(
            f"counts has {len(counts)} entries but targets hold {len(classes)} classes."
        )
    chosen = []
    for c, k in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == c)
        if k > len(members):
            raise ValueError(
                f"Class {c} has {len(members)} examples, fewer than the {k} asked for."
            )
        chosen.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(chosen))


def class_weights(targets: ArrayLike, num_classes: int) -> torch.Tensor:
    """'Balanced' weights ``n / (num_classes * count_c)`` as a float tensor ``(num_classes,)``,
    scikit-learn's ``compute_class_weight("balanced")``: a rare class weighs more.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    from sklearn.utils.class_weight import compute_class_weight

    labels = _labels(targets)
    missing = sorted(set(range(num_classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(
            f"Classes {missing} have no examples; a weight for them is undefined. "
            "Add examples of every class to the training split."
        )
    weights = compute_class_weight("balanced", classes=np.arange(num_classes), y=labels)
    return torch.tensor(weights, dtype=torch.float32)


def weighted_loss(targets: ArrayLike, num_classes: int) -> nn.CrossEntropyLoss:
    """Cross-entropy whose terms are weighted by :func:`class_weights` of the training ``targets``.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    return nn.CrossEntropyLoss(weight=class_weights(targets, num_classes))


def balanced_sampler(
    targets: ArrayLike, num_samples: int | None = None, seed: int = 0
) -> WeightedRandomSampler:
    """A sampler that draws every class equally often (with replacement): each example's weight
    is ``1 / count(its class)``. Pass it as ``DataLoader(..., sampler=...)`` (no ``shuffle``).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    labels = _labels(targets)
    counts = np.bincount(labels)
    weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        weights, num_samples or len(labels), replacement=True, generator=generator
    )
