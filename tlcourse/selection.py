"""Choosing a pretrained backbone: measure each candidate on *your* target before committing.

A :class:`Candidate` is a backbone with the preprocessing it expects. :func:`compare_backbones`
measures, for each one, the linear-probe accuracy on the target's validation split (features
extracted once, a logistic regression on top), the parameter count, the feature-extraction time
and the CPU latency per image (eval mode,
``torch.inference_mode``, warm-up runs, median of repeats). :func:`embed_2d` and
:func:`embedding_grid` show how the target's classes lie in each backbone's feature space.

Introduced in notebooks/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from tlcourse import timing
from tlcourse.recipes import extract_features, logistic_probe
from tlcourse.surgery import count_parameters

Loaders = tuple[Iterable, Iterable]


@dataclass
class Candidate:
    """A backbone to compare: ``backbone`` maps ``(N, *input_size)`` to ``(N, D)`` features,
    ``transform`` is the preprocessing it expects, ``licence`` the licence of its weights."""

    name: str
    backbone: nn.Module
    transform: Callable
    input_size: tuple[int, ...]
    licence: str = "unknown"


def resized_entry(name: str, size: int | None = None):
    """The zoo entry of ``name``, set to take ``size x size`` inputs if ``size`` is given
    (resize the short side, centre-crop; same normalisation).

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from tlcourse import zoo

    entry = zoo.entry(name)
    if size is None:
        return entry
    return dataclasses.replace(entry, input_size=(3, size, size), resize_size=size)


def preprocessing(name: str, size: int | None = None) -> Callable:
    """``zoo.preprocessing(name)``, at ``size x size`` instead of the backbone's own size if given.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from tlcourse.augment import for_backbone

    return for_backbone(resized_entry(name, size))


def from_zoo(name: str, *, pretrained: bool = True, size: int | None = None) -> Candidate:
    """The zoo backbone ``name`` as a :class:`Candidate` (its own normalisation from its entry).

    ``pretrained=False`` gives the same architecture with random weights: the floor any
    pretrained backbone must clear. ``size`` feeds it ``size x size`` inputs instead of its own
    input size (same normalisation): cheaper for a large backbone, at a cost to measure.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from tlcourse import zoo

    entry = resized_entry(name, size)
    backbone = zoo.load(name, 2, pretrained=pretrained).backbone
    label = name if size is None else f"{name} @{size}px"
    label, licence = (label, entry.licence) if pretrained else (f"{label} (random init)", "n/a")
    return Candidate(label, backbone, preprocessing(name, size), tuple(entry.input_size), licence)


@torch.inference_mode()
def latency_ms(
    model: nn.Module,
    input_size: Sequence[int],
    *,
    batch_size: int = 1,
    warmup: int = 3,
    repeats: int = 20,
) -> float:
    """Median CPU milliseconds per image of ``model`` on a random batch ``(batch_size, *input_size)``.

    Done right: eval mode (no BatchNorm/dropout training behaviour), no autograd bookkeeping,
    ``warmup`` untimed calls first (lazy initialisation, caches), the median of ``repeats``
    timed calls (robust to a busy machine). Runs on the CPU; the model is moved back after.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.cpu().eval()
    x = torch.randn(batch_size, *input_size)
    try:
        ms = timing.latency_ms(lambda: model(x), warmup=warmup, repeats=repeats)
    finally:
        model.to(device).train(was_training)
    return ms / batch_size


def probe_accuracy(
    backbone: nn.Module,
    loaders: Loaders,
    *,
    C: float = 1.0,
    device: str | torch.device | None = None,
) -> tuple[float, dict[str, torch.Tensor]]:
    """Linear-probe accuracy of ``backbone``: fitted on ``loaders[0]``, scored on ``loaders[1]``.

    While choosing, score on the validation split; touch the test split once, for the final
    number of the chosen backbone. Returns ``(accuracy, {"train": features (N, D), "val":
    features (M, D), "train_y", "val_y", "seconds": feature-extraction time})``.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    start = time.perf_counter()
    train = extract_features(backbone, loaders[0], device=device)
    scored = extract_features(backbone, loaders[1], device=device)
    seconds = time.perf_counter() - start
    features = {
        "train": train[0],
        "train_y": train[1],
        "val": scored[0],
        "val_y": scored[1],
        "seconds": seconds,
    }
    return logistic_probe(train, scored, C=C), features


def compare_backbones(
    candidates: Sequence[Candidate],
    make_loaders: Callable[[Callable], Loaders],
    *,
    latency_repeats: int = 20,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One row per candidate: linear-probe accuracy on validation, parameters (millions), CPU ms
    per image, seconds to extract the features, feature size, licence.
    ``make_loaders(transform)`` returns ``(train_loader, val_loader)`` yielding inputs
    preprocessed with that candidate's transform.

    Returns ``(table, features by candidate name)``.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from tlcourse.progress import progress_bar

    rows, features = [], {}
    for cand in progress_bar(
        len(candidates), enabled=progress, iterable=candidates, desc="backbones"
    ):
        accuracy, feats = probe_accuracy(cand.backbone, make_loaders(cand.transform), device=device)
        features[cand.name] = feats
        rows.append(
            {
                "backbone": cand.name,
                "probe accuracy": accuracy,
                "parameters (M)": count_parameters(cand.backbone) / 1e6,
                "CPU ms / image": latency_ms(
                    cand.backbone, cand.input_size, repeats=latency_repeats
                ),
                "features (s)": feats["seconds"],
                "feature dim": int(feats["train"].shape[1]),
                "licence": cand.licence,
            }
        )
    return pd.DataFrame(rows).set_index("backbone"), features


def embed_2d(features: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``features (N, D)`` to ``(N, 2)`` with scikit-learn's PCA or t-SNE (standardised first).

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(np.asarray(features, dtype=np.float32))
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}.")


def separation(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Silhouette score of the classes in feature space (cosine distance), in ``[-1, 1]``:
    higher means same-class examples sit closer together than to other classes.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(np.asarray(features), np.asarray(labels), metric="cosine"))


def embedding_grid(
    embeddings: Mapping[str, np.ndarray],
    labels: torch.Tensor,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """One scatter panel per backbone of 2-D embeddings ``(N, 2)``, coloured by class.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(embeddings), figsize=(4 * len(embeddings), 4), squeeze=False)
    cmap = plt.get_cmap("tab20" if labels.max() >= 10 else "tab10")
    for ax, (name, points) in zip(axes[0], embeddings.items(), strict=True):
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=cmap, s=6, vmin=0, vmax=cmap.N - 1)
        ax.set(title=name, xticks=[], yticks=[])
    if class_names is not None and len(class_names) <= 20:
        handles = [
            plt.Line2D([], [], marker="o", ls="", color=cmap(i), label=n)
            for i, n in enumerate(class_names)
        ]
        fig.legend(handles=handles, loc="center right", fontsize=7, frameon=False)
        fig.subplots_adjust(right=0.9)
    return fig


def choose_backbone(
    table: pd.DataFrame, *, tolerance: float = 0.01, max_ms: float | None = None
) -> str:
    """The backbone to pick from a :func:`compare_backbones` table (probe accuracy on the
    validation split, never the test split): among those within
    ``max_ms`` CPU milliseconds per image (if given), the cheapest (fewest parameters) whose
    probe accuracy is within ``tolerance`` of the best one's.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    fast = table if max_ms is None else table[table["CPU ms / image"] <= max_ms]
    if fast.empty:
        raise ValueError(
            f"No backbone runs within {max_ms} ms per image; the fastest takes "
            f"{table['CPU ms / image'].min():.1f} ms. Raise max_ms or add smaller candidates."
        )
    good = fast[fast["probe accuracy"] >= fast["probe accuracy"].max() - tolerance]
    return str(good.sort_values(["parameters (M)", "CPU ms / image"]).index[0])
