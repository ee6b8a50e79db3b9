"""Few-shot episodes: N-way K-shot tasks drawn from a labelled pool, solved with prototypes.

An *episode* picks ``n_way`` classes, ``k_shot`` labelled *support* examples and ``n_query``
*query* examples of each; labels are renumbered ``0 .. n_way - 1`` inside the episode. A
prototypical classifier (Snell, Swersky, Zemel 2017) averages each class's support embeddings
into a *prototype* and gives a query the class of the nearest one (squared Euclidean distance).
Accuracy is averaged over many episodes and reported with a 95 % confidence interval.

Introduced in notebooks/12_regularisation_and_robustness.ipynb.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch


class Episode(NamedTuple):
    """Indices into the pool and episode labels ``0 .. n_way - 1``; ``classes`` are pool labels."""

    support: torch.Tensor  # (n_way * k_shot,) indices
    support_labels: torch.Tensor  # (n_way * k_shot,)
    query: torch.Tensor  # (n_way * n_query,) indices
    query_labels: torch.Tensor  # (n_way * n_query,)
    classes: torch.Tensor  # (n_way,) the pool labels of episode classes 0 .. n_way - 1


class EpisodeResult(NamedTuple):
    """Mean accuracy over episodes, the half-width of its 95 % interval, and every episode's."""

    mean: float
    ci95: float
    accuracies: np.ndarray


def sample_episode(
    targets: torch.Tensor, n_way: int, k_shot: int, n_query: int, generator: torch.Generator
) -> Episode:
    """Draw one episode from a pool with labels ``targets`` ``(N,)`` (support and query disjoint).

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    targets = torch.as_tensor(targets)
    labels, counts = targets.unique(return_counts=True)
    if n_way < 1 or k_shot < 1 or n_query < 1:
        raise ValueError(f"n_way={n_way}, k_shot={k_shot}, n_query={n_query}: all must be >= 1")
    eligible = labels[counts >= k_shot + n_query]
    if len(eligible) < n_way:
        raise ValueError(
            f"only {len(eligible)} classes have k_shot + n_query = {k_shot + n_query} examples; "
            f"use fewer ways (n_way <= {len(eligible)}) or fewer shots / queries"
        )
    classes = eligible[torch.randperm(len(eligible), generator=generator)[:n_way]]
    support, query = [], []
    for c in classes:
        members = torch.nonzero(targets == c).flatten()
        picked = members[torch.randperm(len(members), generator=generator)[: k_shot + n_query]]
        support.append(picked[:k_shot])
        query.append(picked[k_shot:])
    way = torch.arange(n_way)
    return Episode(
        torch.cat(support),
        way.repeat_interleave(k_shot),
        torch.cat(query),
        way.repeat_interleave(n_query),
        classes,
    )


def prototypes(support: torch.Tensor, labels: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means of the support embeddings: ``(S, D)`` and labels ``(S,)`` -> ``(n_way, D)``.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    if support.ndim != 2 or len(support) != len(labels):
        raise ValueError(
            f"support must be (S, D) with one label each; got {tuple(support.shape)} and "
            f"{len(labels)} labels (embed the images first, e.g. with recipes.extract_features)"
        )
    sums = torch.zeros(n_way, support.shape[1], dtype=support.dtype).index_add_(0, labels, support)
    counts = torch.bincount(labels, minlength=n_way).clamp(min=1).unsqueeze(1)
    return sums / counts


def episode_accuracy(features: torch.Tensor, episode: Episode) -> float:
    """Accuracy of the nearest prototype (squared Euclidean) on the episode's queries.

    ``features`` ``(N, D)`` are the embeddings of the whole pool.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    n_way = len(episode.classes)
    protos = prototypes(features[episode.support], episode.support_labels, n_way)
    predicted = torch.cdist(features[episode.query], protos).argmin(1)
    return float((predicted == episode.query_labels).float().mean())


def evaluate_episodes(
    features: torch.Tensor,
    targets: torch.Tensor,
    n_way: int,
    k_shot: int,
    n_query: int = 15,
    episodes: int = 600,
    seed: int = 0,
) -> EpisodeResult:
    """Mean prototype accuracy over ``episodes`` episodes and its 95 % confidence interval.

    The interval is ``1.96 · std / sqrt(episodes)`` (the usual report in few-shot papers): it
    says how well the mean is pinned down, not how much single episodes vary.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    if len(features) != len(targets):
        raise ValueError(f"{len(features)} feature rows but {len(targets)} targets: pass one each")
    if episodes < 2:
        raise ValueError(f"episodes={episodes}: a confidence interval needs at least 2 episodes")
    gen = torch.Generator().manual_seed(seed)
    accs = np.array(
        [
            episode_accuracy(features, sample_episode(targets, n_way, k_shot, n_query, gen))
            for _ in range(episodes)
        ]
    )
    return EpisodeResult(
        float(accs.mean()), 1.96 * float(accs.std(ddof=1)) / math.sqrt(episodes), accs
    )
