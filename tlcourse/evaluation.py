"""Looking at a classifier's errors: the most confidently wrong examples, as a table and a grid.

Per-class precision / recall / F1 and the confusion matrix live in :mod:`tlcourse.metrics` and
:mod:`tlcourse.plots`; this module adds the view a person checks next: which test images the
model got wrong while being most sure of itself (often label noise, look-alike classes, or a
preprocessing bug).

Introduced in notebooks/04_image_finetuning.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from matplotlib.figure import Figure

from tlcourse.plots import image_grid


def most_confident_mistakes(
    logits: torch.Tensor,
    targets: torch.Tensor,
    k: int = 16,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The ``k`` wrong predictions with the highest softmax confidence, most confident first.

    Args:
        logits: ``(N, C)`` model outputs; targets: ``(N,)`` true class indices.
        class_names: optional names for the ``true`` / ``predicted`` columns.

    Returns a DataFrame with columns ``index`` (position in the dataset), ``true``,
    ``predicted``, ``confidence`` (probability of the predicted class) and ``p_true``.
    """
    if logits.ndim != 2 or len(logits) != len(targets):
        raise ValueError(
            f"Need logits (N, C) and targets (N,); got {tuple(logits.shape)} and {tuple(targets.shape)}."
        )
    probs = logits.detach().float().softmax(-1).cpu()
    targets = torch.as_tensor(targets).cpu()
    confidence, predicted = probs.max(-1)
    wrong = torch.nonzero(predicted != targets).flatten()
    order = wrong[confidence[wrong].argsort(descending=True)][:k]
    name = (lambda i: class_names[i]) if class_names is not None else (lambda i: i)
    return pd.DataFrame(
        {
            "index": order.tolist(),
            "true": [name(int(targets[i])) for i in order],
            "predicted": [name(int(predicted[i])) for i in order],
            "confidence": confidence[order].tolist(),
            "p_true": probs[order, targets[order]].tolist(),
        }
    )


def mistakes_grid(
    dataset,
    mistakes: pd.DataFrame,
    ncols: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Figure:
    """Show the images of ``mistakes`` (from :func:`most_confident_mistakes`) titled ``true→pred p``.

    ``dataset[i]`` must return ``(image (C, H, W), label)``; pass the ``mean``/``std`` the
    images were normalised with so they display in their true colours.
    """
    if mistakes.empty:
        raise ValueError("No mistakes to show: the model got every example right.")
    images = torch.stack([dataset[int(i)][0] for i in mistakes["index"]])
    titles = [
        f"{t}→{p}\n{c:.2f}"
        for t, p, c in zip(
            mistakes["true"], mistakes["predicted"], mistakes["confidence"], strict=True
        )
    ]
    return image_grid(images, titles, ncols=min(ncols, len(images)), mean=mean, std=std)
