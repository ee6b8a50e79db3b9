"""A small, readable training engine: ``fit``, ``evaluate``, ``predict`` -> :class:`History`.

The engine knows nothing about the model: it takes any ``nn.Module`` that maps a batch ``x``
to ``logits`` and loaders that yield ``(x, y)``. Extra behaviour (early stopping,
checkpointing with resume, learning-rate schedules) comes from callbacks
(:mod:`tlcourse.callbacks`). Frozen BatchNorm layers stay in eval mode by default.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlcourse.progress import progress_bar
from tlcourse.repro import pick_device
from tlcourse.surgery import count_parameters, set_bn_eval

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch metrics of a run: ``rows[i]`` is a dict such as ``{"epoch": 1, "train_loss": ...}``."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def series(self, name: str) -> list[float]:
        """All values of metric ``name``, one per epoch that recorded it."""
        return [row[name] for row in self.rows if name in row]

    def last(self, name: str) -> float:
        """The most recent value of metric ``name``."""
        values = self.series(name)
        if not values:
            raise KeyError(f"No metric {name!r} in this history; it has {sorted(self.keys())}.")
        return values[-1]

    def keys(self) -> set[str]:
        """The metric names recorded in any epoch."""
        return {k for row in self.rows for k in row}

    def __len__(self) -> int:
        return len(self.rows)


@dataclass
class TrainState:
    """What callbacks see and may change while ``fit`` runs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_loader: Iterable
    epochs: int
    history: History
    epoch: int = 0
    step: int = 0
    scheduler: Any = None
    stop: bool = False


def check_labels(y: torch.Tensor, num_classes: int) -> None:
    """Raise a clear ``ValueError`` when class labels fall outside ``[0, num_classes)``."""
    if y.dtype in (torch.int64, torch.int32) and y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"Label {hi if hi >= num_classes else lo} is outside the model's {num_classes} "
                f"classes (0..{num_classes - 1}). Give the model a head with enough outputs, e.g. "
                f"`surgery.replace_head(model, num_classes={hi + 1})`, or check the dataset's labels."
            )


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that will be trained; raises if there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters: every layer is frozen "
            f"({count_parameters(model):,} frozen). Unfreeze at least the head, e.g. "
            "`surgery.unfreeze(model, 'head')`, before calling fit."
        )
    return params


def train_step(
    model: nn.Module, batch: Sequence, optimizer, loss_fn: LossFn, device
) -> tuple[float, int, int]:
    """One optimisation step on ``batch = (x, y)``; returns (summed loss, correct, count)."""
    x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
    logits = model(x)
    check_labels(y, logits.shape[-1])
    loss = loss_fn(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    n = y.shape[0]
    correct = int((logits.argmax(-1) == y).sum()) if y.dim() == 1 else 0
    return float(loss.detach()) * n, correct, n


def fit(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: LossFn | None = None,
    val_loader: Iterable | None = None,
    callbacks: Sequence = (),
    device: str | torch.device | None = None,
    frozen_bn: str = "eval",
    progress: bool | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the :class:`History`.

    Args:
        model: maps ``x`` of shape ``(N, ...)`` to ``logits`` of shape ``(N, num_classes)``.
        train_loader, val_loader: iterables of ``(x, y)`` batches, ``y`` of shape ``(N,)``.
        optimizer: defaults to ``AdamW(trainable parameters, lr=lr)``.
        loss_fn: defaults to cross-entropy.
        callbacks: objects from :mod:`tlcourse.callbacks` (early stopping, checkpoint, LR schedule).
        frozen_bn: ``"eval"`` keeps BatchNorm layers whose parameters are all frozen in eval
            mode (their running statistics stay as pretrained); ``"train"`` lets them update.
        progress: show a progress bar (default: in notebooks and terminals, not in logs/tests).
    """
    device = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(device)
    params = trainable_parameters(model)
    optimizer = optimizer or torch.optim.AdamW(params, lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    state = TrainState(model, optimizer, train_loader, epochs, History())
    callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
    _call(callbacks, "on_fit_start", state)
    bar = progress_bar(
        total=(epochs - state.epoch) * _length(train_loader), enabled=progress, desc="fit"
    )
    while state.epoch < epochs and not state.stop:
        row = _train_epoch(state, loss_fn, device, frozen_bn, callbacks, bar)
        if val_loader is not None:
            val = evaluate(model, val_loader, loss_fn=loss_fn, device=device)
            row.update({f"val_{k}": v for k, v in val.items()})
        state.epoch += 1
        state.history.rows.append({"epoch": state.epoch, **row})
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "time"}, refresh=False)
        _call(callbacks, "on_epoch_end", state)
    bar.close()
    _call(callbacks, "on_fit_end", state)
    return state.history


def _train_epoch(
    state: TrainState, loss_fn, device, frozen_bn: str, callbacks, bar
) -> dict[str, float]:
    model, start = state.model, time.perf_counter()
    model.train()
    if frozen_bn == "eval":
        set_bn_eval(model)
    total_loss, correct, count, lr = 0.0, 0, 0, state.optimizer.param_groups[0]["lr"]
    for batch in state.train_loader:
        lr = state.optimizer.param_groups[0]["lr"]  # the rate this step uses
        loss, right, n = train_step(model, batch, state.optimizer, loss_fn, device)
        total_loss, correct, count, state.step = (
            total_loss + loss,
            correct + right,
            count + n,
            state.step + 1,
        )
        _call(callbacks, "on_batch_end", state)
        bar.update(1)
    row = {"train_loss": total_loss / max(count, 1), "train_accuracy": correct / max(count, 1)}
    return {**row, "lr": lr, "time": time.perf_counter() - start}


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable, *, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` in eval mode over ``loader``; return ``(logits (N, C), targets (N,))`` on the CPU."""
    device = pick_device(device) if not isinstance(device, torch.device) else device
    was_training = model.training
    model.to(device).eval()
    logits, targets = [], []
    for batch in loader:
        logits.append(model(batch[0].to(device)).float().cpu())
        targets.append(batch[1])
    model.train(was_training)
    if not logits:
        raise ValueError(
            "The loader is empty: nothing to predict. Check the dataset split and batch size."
        )
    return torch.cat(logits), torch.cat(targets)


def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    loss_fn: LossFn | None = None,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``loader``: ``{"loss": ..., "accuracy": ...}``."""
    logits, targets = predict(model, loader, device=device)
    check_labels(targets, logits.shape[-1])
    loss = (loss_fn or nn.CrossEntropyLoss())(logits, targets)
    return {"loss": float(loss), "accuracy": float((logits.argmax(-1) == targets).float().mean())}


def _call(callbacks: Sequence, hook: str, state: TrainState) -> None:
    for cb in callbacks:
        method = getattr(cb, hook, None)
        if method is not None:
            method(state)


def _length(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None
