"""Plots that return matplotlib Figures: learning curves, confusion matrices, image grids, and
the grid of a model's most confident mistakes.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from tlcourse.engine import History


def learning_curves(history: History, metrics: Sequence[str] = ("loss", "accuracy")) -> Figure:
    """One panel per metric with its train and validation curves against the epoch."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    epochs = history.series("epoch")
    for ax, metric in zip(axes[0], metrics, strict=True):
        for split in ("train", "val"):
            values = history.series(f"{split}_{metric}")
            if values:
                ax.plot(epochs[-len(values) :], values, marker="o", label=split)
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str] | None = None, normalize: bool = True
) -> Figure:
    """Heat map of a confusion matrix (rows: true class; columns: predicted), row-normalised."""
    m = np.asarray(matrix, dtype=float)
    shown = m / np.clip(m.sum(1, keepdims=True), 1, None) if normalize else m
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(m))]
    size = max(3.5, 0.45 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="predicted", ylabel="true")
    if len(names) <= 12:
        for i, j in np.ndindex(*m.shape):
            ax.text(
                j,
                i,
                f"{shown[i, j]:.2f}" if normalize else int(m[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shown[i, j] > 0.5 * shown.max() else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def to_displayable(
    images: torch.Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
) -> np.ndarray:
    """``(N, C, H, W)`` float or uint8 tensor (optionally normalised) -> ``(N, H, W, C)`` in [0, 1]."""
    x = images.detach().cpu().float()
    if images.dtype == torch.uint8:
        x = x / 255
    if mean is not None and std is not None:
        x = x * torch.tensor(std).view(1, -1, 1, 1) + torch.tensor(mean).view(1, -1, 1, 1)
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def image_grid(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: float = 1.3,
) -> Figure:
    """A grid of images ``(N, C, H, W)`` with optional titles; pass mean/std to undo normalisation."""
    pics = to_displayable(images, mean, std)
    nrows = int(np.ceil(len(pics) / ncols))
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(size * ncols, size * nrows + 0.3 * (titles is not None)),
        squeeze=False,
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(pics):
            ax.imshow(pics[i].squeeze(-1) if pics[i].shape[-1] == 1 else pics[i], cmap="gray")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def curves(
    xs: Sequence[float],
    series: dict[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
) -> Figure:
    """Several named lines over the same x values, e.g. accuracy against labels per class."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


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

    Introduced in notebooks/04_image_finetuning.ipynb.
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
