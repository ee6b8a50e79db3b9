"""Leaks between training and test data: how one is made by accident, found and fixed.

The classic accident: augment (or oversample) a dataset first and split it afterwards, so
copies of one original land on both sides and the test score measures memory, not skill.
The fix: split by *group* (the original an example came from) with scikit-learn's
``GroupShuffleSplit``; the audit: look for test examples whose backbone features are near-copies
of a training example (:func:`near_duplicates`).

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from numpy.typing import ArrayLike


def with_views(
    images: torch.Tensor, targets: torch.Tensor, copies: int, transform: Callable, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Each image ``(N, 3, H, W)`` plus ``copies - 1`` augmented views of it.

    Returns ``(images (N * copies, 3, H, W), targets (N * copies,), groups (N * copies,))`` where
    ``groups[i]`` is the index of the original that row ``i`` came from (the original first).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}.")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        views = [
            torch.stack([torch.as_tensor(transform(im)).as_subclass(torch.Tensor) for im in images])
            for _ in range(copies - 1)
        ]
    all_images = torch.stack([images, *views], dim=1).flatten(0, 1)
    groups = np.repeat(np.arange(len(images)), copies)
    return all_images, targets.repeat_interleave(copies), groups


def random_split(n: int, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a plain random split of ``n`` rows (leaks if rows are copies).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    from sklearn.model_selection import ShuffleSplit

    split = ShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(split.split(np.zeros(n)))
    return np.sort(train), np.sort(test)


def group_split(
    groups: ArrayLike, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices such that no group (original) has rows on both sides.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.asarray(groups)
    split = GroupShuffleSplit(n_splits=1, test_size=test_fraction, random_state=seed)
    train, test = next(split.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train), np.sort(test)


def shared_groups(groups: ArrayLike, train: ArrayLike, test: ArrayLike) -> int:
    """How many groups have rows in both ``train`` and ``test`` (0 for a clean split).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    groups = np.asarray(groups)
    return len(np.intersect1d(groups[np.asarray(train)], groups[np.asarray(test)]))


def max_similarity(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """For each row of ``queries (M, D)``, its highest cosine similarity to a row of
    ``reference (N, D)``: shape ``(M,)``.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    q = torch.nn.functional.normalize(queries.float(), dim=1)
    r = torch.nn.functional.normalize(reference.float(), dim=1)
    return (q @ r.T).max(dim=1).values


def near_duplicates(
    queries: torch.Tensor, reference: torch.Tensor, threshold: float = 0.95
) -> np.ndarray:
    """Indices of the rows of ``queries (M, D)`` whose cosine similarity to some row of
    ``reference (N, D)`` is at least ``threshold``: likely copies (audit a test set this way).

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    return np.flatnonzero(max_similarity(queries, reference).numpy() >= threshold)
