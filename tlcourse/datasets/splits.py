"""The split helpers, in one place: labels of a dataset, subsets, few labels per class,
stratified fractions, overlap checks. Deterministic from a seed, leak-free.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike
from torch.utils.data import Dataset, Subset


def _as_labels(targets: ArrayLike) -> np.ndarray:
    labels = np.asarray(targets.tolist() if hasattr(targets, "tolist") else targets)
    if labels.ndim != 1:
        raise ValueError(
            f"targets must be one class label per example (1-D); got shape {labels.shape}."
        )
    return labels


def labels_per_class_subset(targets: ArrayLike, k: int, seed: int = 0) -> np.ndarray:
    """Indices of ``k`` examples of every class, drawn with ``seed``; sorted, shape ``(k * C,)``.

    The same ``targets``, ``k`` and ``seed`` always give the same indices, and a larger ``k``
    with the same seed keeps the examples of a smaller one (nested subsets, so learning curves
    compare like with like). Raises ``ValueError`` naming the class that has fewer than ``k``.

    Introduced in notebooks/00_welcome.ipynb.
    """
    labels = _as_labels(targets)
    if k < 1:
        raise ValueError(f"labels_per_class must be >= 1, got {k}.")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < k:
            raise ValueError(
                f"Class {c} has only {len(members)} examples, fewer than labels_per_class={k}. "
                f"Use labels_per_class <= {len(members)} or a larger training split."
            )
        chosen.append(members[rng.permutation(len(members))[:k]])
    return np.sort(np.concatenate(chosen))


def stratified_split(
    targets: ArrayLike, fractions: Sequence[float], seed: int = 0
) -> list[np.ndarray]:
    """Split indices into parts of the given ``fractions`` (summing to 1), stratified by class.

    Returns one sorted index array per fraction; the parts are disjoint and cover every index.
    Uses scikit-learn's ``train_test_split`` repeatedly.
    """
    from sklearn.model_selection import train_test_split

    labels = _as_labels(targets)
    if not np.isclose(sum(fractions), 1.0) or min(fractions) <= 0:
        raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}.")
    rest, remaining, parts = np.arange(len(labels)), 1.0, []
    for frac in fractions[:-1]:
        take, rest = train_test_split(
            rest, train_size=frac / remaining, stratify=labels[rest], random_state=seed
        )
        parts.append(np.sort(take))
        remaining -= frac
    return [*parts, np.sort(rest)]


def check_disjoint(**parts: ArrayLike) -> None:
    """Raise ``ValueError`` if any two named index sets overlap (a leak between splits)."""
    names = list(parts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = np.intersect1d(np.asarray(parts[a]), np.asarray(parts[b]))
            if shared.size:
                raise ValueError(
                    f"{shared.size} index(es) are in both {a!r} and {b!r} (e.g. {shared[0]}): "
                    "the splits leak. Draw them from disjoint pools."
                )


def targets_of(dataset: Dataset) -> np.ndarray:
    """Class labels ``(N,)`` of a dataset with ``.targets`` (every course dataset, or a ``Subset`` of one).

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    if hasattr(dataset, "targets"):
        return np.asarray(dataset.targets)
    if isinstance(dataset, Subset):
        return targets_of(dataset.dataset)[np.asarray(dataset.indices)]
    raise TypeError(
        f"{type(dataset).__name__} has no .targets; pass a course dataset (catalog.load), an "
        "ImageFolder or a Subset of one (or add a .targets list of class indices)."
    )


def subset(dataset: Dataset, indices: Sequence[int] | np.ndarray) -> Dataset:
    """``dataset`` cut to ``indices`` (in that order), keeping ``.targets`` and ``.classes``.

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if hasattr(dataset, "subset"):
        return dataset.subset(indices.tolist())
    part = Subset(dataset, indices.tolist())
    part.targets = targets_of(dataset)[indices].tolist()
    part.classes = list(getattr(dataset, "classes", []))
    return part


def few_labels(dataset: Dataset, labels_per_class: int, seed: int = 0) -> Dataset:
    """``labels_per_class`` examples of every class (nested across counts for one ``seed``).

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    return subset(dataset, labels_per_class_subset(targets_of(dataset), labels_per_class, seed))
