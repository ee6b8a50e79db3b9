"""Metrics as thin wrappers over scikit-learn, taking logits or predictions as tensors, and the
error analysis a person checks next: the most confidently wrong examples
(:func:`most_confident_mistakes`; :func:`tlcourse.plots.mistakes_grid` shows them).

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn import metrics as skm

ArrayLike = torch.Tensor | np.ndarray | Sequence[int]


def to_labels(values: ArrayLike) -> np.ndarray:
    """Class labels ``(N,)`` from labels ``(N,)`` or logits/probabilities ``(N, C)``."""
    arr = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return arr.argmax(-1) if arr.ndim == 2 else arr.astype(int)


def accuracy(pred: ArrayLike, target: ArrayLike) -> float:
    """Fraction of correct predictions (``pred`` may be logits)."""
    return float(skm.accuracy_score(to_labels(target), to_labels(pred)))


def macro_f1(pred: ArrayLike, target: ArrayLike) -> float:
    """F1 averaged over classes with equal weight."""
    return float(skm.f1_score(to_labels(target), to_labels(pred), average="macro", zero_division=0))


def per_class_report(
    pred: ArrayLike, target: ArrayLike, class_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Precision, recall, F1 and support per class (rows), as a DataFrame."""
    y_true, y_pred = to_labels(target), to_labels(pred)
    labels = (
        np.arange(len(class_names)) if class_names is not None else np.unique(np.r_[y_true, y_pred])
    )
    p, r, f, s = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    index = list(class_names) if class_names is not None else [str(label) for label in labels]
    return pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=index)


def confusion(pred: ArrayLike, target: ArrayLike, num_classes: int | None = None) -> np.ndarray:
    """Confusion matrix ``(C, C)``: rows are true classes, columns predicted classes."""
    y_true, y_pred = to_labels(target), to_labels(pred)
    n = num_classes or int(max(y_true.max(), y_pred.max())) + 1
    return skm.confusion_matrix(y_true, y_pred, labels=np.arange(n))


def most_confident_mistakes(
    logits: torch.Tensor,
    targets: torch.Tensor,
    k: int = 16,
    class_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The ``k`` wrong predictions with the highest softmax confidence, most confident first.

    Introduced in notebooks/04_image_finetuning.ipynb.

    Args:
        logits: ``(N, C)`` model outputs; targets: ``(N,)`` true class indices.
        class_names: optional names for the ``true`` / ``predicted`` columns.

    Often label noise, look-alike classes, or a preprocessing bug. Returns a DataFrame with columns ``index`` (position in the dataset), ``true``,
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
