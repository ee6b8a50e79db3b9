"""Observers and stand-in models for the chapter 02 and 03 questions.

The batch grader runs observers, and unpickles the cases, *inside the submission's kernel*,
where ``tlcourse/grading/sets`` is hidden; so what both need lives here (see
:mod:`tlcourse.grading.observers` for the format: ``observe(result, args) -> plain data``).
Each observer reports *properties* of an answer where many answers are right (a split, a
latency, a 2-D projection up to signs).

Introduced in exercises/02_preparing_data.ipynb.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn


def applied(result: Any, args: tuple) -> Any:
    """The transform applied to three fixed uint8 images of the entry's input size, stacked."""
    if not callable(result):
        return {"error": f"expected a transform (a callable), got {type(result).__name__}"}
    size = args[0].input_size[-1]
    images = torch.randint(
        0, 256, (3, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(size)
    )
    outs = [result(im.clone()) for im in images]
    if not all(isinstance(o, torch.Tensor) for o in outs):
        return {"error": "the transform must return a tensor"}
    return torch.stack([o.as_subclass(torch.Tensor) for o in outs])


def as_float32(result: Any, args: tuple) -> Any:
    """The result as a float32 tensor (lists and arrays accepted)."""
    try:
        return (
            torch.as_tensor(np.asarray(result, dtype=np.float32))
            if not isinstance(result, torch.Tensor)
            else result.detach().float()
        )
    except (TypeError, ValueError):
        return {"error": f"expected a tensor of numbers, got {type(result).__name__}"}


def split_properties(result: Any, args: tuple) -> dict[str, Any]:
    """What makes a split leak-free, not which rows it picked."""
    try:
        train, test = (np.asarray(part, dtype=np.int64).ravel() for part in result)
    except (TypeError, ValueError):
        return {"error": "expected (train_indices, test_indices)"}
    groups, fraction = np.asarray(args[0]), args[1]
    n = len(groups)
    valid = bool(((train >= 0) & (train < n)).all() and ((test >= 0) & (test < n)).all())
    every_row_once = valid and sorted(np.concatenate([train, test]).tolist()) == list(range(n))
    return {
        "every row in exactly one part": every_row_once,
        "no original on both sides": valid and not set(groups[train]) & set(groups[test]),
        "test share of the originals close to test_fraction": valid
        and abs(len(set(groups[test])) / len(set(groups)) - fraction) <= 0.06,
    }


def normalised_weights(result: Any, args: tuple) -> Any:
    """Per-example weights divided by their sum (any overall scale is right), float64."""
    try:
        w = torch.as_tensor(
            np.asarray(
                result.detach() if isinstance(result, torch.Tensor) else result, dtype=np.float64
            )
        )
    except (TypeError, ValueError):
        return {"error": f"expected one weight per example, got {type(result).__name__}"}
    return (
        w / w.sum()
        if w.ndim == 1 and float(w.sum()) > 0
        else {"error": f"expected positive weights of shape (N,), got shape {tuple(w.shape)}"}
    )


class SlowStart(nn.Module):
    """A stand-in model: its first calls are slow (lazy initialisation, cold caches), later
    calls take ``ms_per_image`` per image. It records the mode and autograd state of each call."""

    def __init__(
        self, ms_per_image: float = 4.0, slow_calls: int = 2, slow_s: float = 0.25
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1))
        self.ms_per_image, self.slow_calls, self.slow_s = ms_per_image, slow_calls, slow_s
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled()))
        if len(self.calls) <= self.slow_calls:
            time.sleep(self.slow_s)
        else:
            time.sleep(self.ms_per_image * len(x) / 1000)
        return x.flatten(1) * self.weight


def latency_report(result: Any, args: tuple) -> dict[str, Any]:
    """Whether the measurement was done right, not the exact milliseconds."""
    model: SlowStart = args[0]
    number = isinstance(result, int | float) and not isinstance(result, bool)
    calls = model.calls
    return {
        "returns a number": number,
        "timed in eval mode": bool(calls)
        and not any(training for training, _ in calls[model.slow_calls :]),
        "timed without autograd": bool(calls)
        and not any(grad for _, grad in calls[model.slow_calls :]),
        "slow first calls not counted (ms per image close to the steady state)": number
        and 0.8 * model.ms_per_image <= result <= 2.5 * model.ms_per_image,
        "model left in the mode it came in": model.training == model.initial_training,
    }


def features_report(result: Any, args: tuple) -> Any:
    """The features (detached), whether they carry autograd history, and the mode afterwards."""
    if not isinstance(result, torch.Tensor):
        return {"error": f"expected a tensor of features, got {type(result).__name__}"}
    return {
        "features": result.detach(),
        "requires_grad": bool(result.requires_grad),
        "backbone left in train mode": bool(args[0].training),
    }


def distances(result: Any, args: tuple) -> Any:
    """Pairwise distances of the projected points: the same for any sign of each axis."""
    points = torch.as_tensor(
        np.asarray(
            result.detach() if isinstance(result, torch.Tensor) else result, dtype=np.float64
        )
    )
    if points.shape != (len(args[0]), 2):
        return {"error": f"expected shape ({len(args[0])}, 2), got {tuple(points.shape)}"}
    return torch.cdist(points, points)
