"""A small, readable training engine: ``fit``, ``evaluate``, ``predict`` -> :class:`History`.

The engine knows nothing about the model: it takes any ``nn.Module`` that maps a batch ``x``
to ``logits`` and loaders that yield ``(x, y)``. Extra behaviour (early stopping,
checkpointing with resume, learning-rate schedules) comes from callbacks
(:mod:`tlcourse.callbacks`). Frozen BatchNorm layers stay in eval mode by default.

What later chapters need is built in, off by default: ``mixed_precision`` (bf16 autocast on
the CPU, fp16 autocast + a gradient scaler on CUDA), ``accumulate`` (gradient accumulation over
micro-batches), ``clip_grad`` (gradient-norm clipping) and ``batch_loss(logits, batch)`` (a loss
that sees the whole batch, e.g. teacher logits for distillation).

Bad input never passes quietly: the arguments and the first batch are checked at the door
(:mod:`tlcourse.guards`; each error says what to do), and a NaN or
infinite loss stops training (:class:`NonFiniteLossError`) before the weights are touched, so
the last checkpoint written by :class:`~tlcourse.callbacks.Checkpoint` stays the last good one.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlcourse.guards import (
    EMPTY,
    check_batch,
    check_fit_args,
    check_label_dtype,
    check_labels,
    check_step_args,
)
from tlcourse.progress import progress_bar
from tlcourse.repro import pick_device
from tlcourse.surgery import count_parameters, set_bn_eval

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BatchLoss = Callable[[torch.Tensor, Sequence], torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the weights changed."""


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
    step_options: dict = field(default_factory=dict)  # precision, accumulation, clipping
    check_labels: bool = True  # check the first batch's labels for cross-entropy
    checked: bool = False  # the first batch of the run has been checked


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
    model: nn.Module,
    batch: Sequence,
    optimizer,
    loss_fn: LossFn | None,
    device,
    *,
    batch_loss: BatchLoss | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
    scaler: Any = None,
    accumulate: int = 1,
    update: bool = True,
    clip_grad: float | None = None,
    where: str = "",
) -> tuple[float, int, int]:
    """One optimisation step on ``batch = (x, y, ...)``; returns (summed loss, correct, count).

    With ``accumulate > 1`` the loss is divided by ``accumulate`` and the optimizer steps only
    when ``update`` is true (the last micro-batch of a group).
    """
    batch = [to_device(t, device) for t in batch]
    x, y = batch[0], batch[1]
    with autocast():
        logits = model(x)
        if batch_loss is None:
            check_labels(y, logits.shape[-1])
            loss = loss_fn(logits, y)
        else:
            loss = batch_loss(logits, batch)
    value = float(loss.detach())
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"The loss is {value} at {where or 'this step'}: training stopped before this step "
            "changed the weights (the last checkpoint is intact). Try a lower learning rate "
            "(e.g. 10x lower), gradient clipping (clip_grad=1.0), or check the inputs for "
            "NaN/inf values and labels for the loss."
        )
    if update and accumulate == 1:
        optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss / accumulate) if scaler else loss / accumulate).backward()
    if update:
        if clip_grad is not None:
            if scaler:
                scaler.unscale_(optimizer)
            params = [p for g in optimizer.param_groups for p in g["params"]]
            nn.utils.clip_grad_norm_(params, clip_grad)
        if scaler:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if accumulate > 1:
            optimizer.zero_grad(set_to_none=True)
    n = y.shape[0]
    correct = (
        int((logits.argmax(-1) == y).sum()) if y.dim() == 1 and not y.is_floating_point() else 0
    )
    return value * n, correct, n


def to_device(value: Any, device) -> Any:
    """``value`` on ``device``: a tensor, or tuples / lists / dicts of tensors (multi-input)."""
    if isinstance(value, torch.Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, list | tuple):
        return type(value)(to_device(v, device) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


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
    mixed_precision: bool = False,
    accumulate: int = 1,
    clip_grad: float | None = None,
    batch_loss: BatchLoss | None = None,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_loader``; return the :class:`History`.

    Args:
        model: maps ``x`` of shape ``(N, ...)`` to ``logits`` of shape ``(N, num_classes)``.
        train_loader, val_loader: iterables of ``(x, y)`` batches, ``y`` of shape ``(N,)``
            (more items after ``y`` are passed to ``batch_loss``).
        optimizer: defaults to ``AdamW(trainable parameters, lr=lr)``.
        loss_fn: ``loss_fn(logits, y)``, defaults to cross-entropy.
        callbacks: objects from :mod:`tlcourse.callbacks` (early stopping, checkpoint, LR schedule).
        frozen_bn: ``"eval"`` keeps BatchNorm layers whose parameters are all frozen in eval
            mode (their running statistics stay as pretrained); ``"train"`` lets them update.
        progress: show a progress bar (default: in notebooks and terminals, not in logs/tests).
        mixed_precision: bf16 autocast on the CPU; fp16 autocast with a gradient scaler on CUDA.
        accumulate: micro-batches per optimizer step (gradient accumulation).
        clip_grad: clip the gradients' total norm to this value before each step.
        batch_loss: ``batch_loss(logits, batch) -> loss`` instead of ``loss_fn``; ``batch`` is
            the whole batch on the device (e.g. ``(x, y, teacher_logits)``).
    """
    check_fit_args(model, train_loader, epochs, optimizer, lr, loss_fn, batch_loss, callbacks)
    check_step_args(frozen_bn, accumulate, clip_grad)
    device = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(device)
    params = trainable_parameters(model)
    optimizer = optimizer or torch.optim.AdamW(params, lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    state = TrainState(model, optimizer, train_loader, epochs, History())
    state.step_options = {
        "batch_loss": batch_loss,
        "accumulate": accumulate,
        "clip_grad": clip_grad,
        **_precision(device, mixed_precision),
    }
    callbacks = sorted(callbacks, key=lambda cb: getattr(cb, "order", 0))
    _call(callbacks, "on_fit_start", state)
    length = _length(train_loader)
    total = None if length is None else (epochs - state.epoch) * length
    bar = progress_bar(total=total, enabled=progress, desc="fit")
    state.check_labels = batch_loss is None and isinstance(loss_fn, nn.CrossEntropyLoss)
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


def _precision(device: torch.device, enabled: bool) -> dict[str, Any]:
    """Autocast context and gradient scaler for ``mixed_precision`` on ``device``."""
    if not enabled:
        return {"autocast": contextlib.nullcontext, "scaler": None}
    if device.type == "cuda":
        return {
            "autocast": lambda: torch.autocast("cuda", dtype=torch.float16),
            "scaler": torch.amp.GradScaler("cuda"),
        }
    return {"autocast": lambda: torch.autocast(device.type, dtype=torch.bfloat16), "scaler": None}


def _train_epoch(
    state: TrainState, loss_fn, device, frozen_bn: str, callbacks, bar
) -> dict[str, float]:
    model, start = state.model, time.perf_counter()
    model.train()
    if frozen_bn == "eval":
        set_bn_eval(model)
    options, total = state.step_options, _length(state.train_loader)
    every = options["accumulate"]
    total_loss, correct, count, lr = 0.0, 0, 0, state.optimizer.param_groups[0]["lr"]
    state.optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(state.train_loader, start=1):
        lr = state.optimizer.param_groups[0]["lr"]  # the rate this step uses
        where = f"epoch {state.epoch + 1}, step {state.step + 1} (batch {i})"
        update = i % every == 0 or i == total
        if not state.checked:  # the first batch of the run, at the door
            check_batch(model, batch, "fit", labels=state.check_labels)
            state.checked = True
        loss, right, n = train_step(
            model,
            batch,
            state.optimizer,
            loss_fn,
            device,
            update=update,
            where=where,
            **options,
        )
        total_loss, correct, count, state.step = (
            total_loss + loss,
            correct + right,
            count + n,
            state.step + 1,
        )
        _call(callbacks, "on_batch_end", state)
        bar.update(1)
    if count == 0:
        raise ValueError(EMPTY.format(what="training"))
    row = {"train_loss": total_loss / count, "train_accuracy": correct / count}
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
        if not logits:
            check_batch(model, batch, "predict", labels=False)
        logits.append(model(to_device(batch[0], device)).float().cpu())
        targets.append(batch[1])
    model.train(was_training)
    if not logits:
        raise ValueError(EMPTY.format(what="prediction"))
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
    if loss_fn is None or isinstance(loss_fn, nn.CrossEntropyLoss):
        check_label_dtype(targets, "evaluate")
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
