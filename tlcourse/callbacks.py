"""Callbacks for :func:`tlcourse.engine.fit`: early stopping, checkpoints with resume, LR schedules.

A callback is any object with some of the hooks ``on_fit_start``, ``on_batch_end``,
``on_epoch_end``, ``on_fit_end``; each receives the :class:`~tlcourse.engine.TrainState`.
Callbacks run in increasing ``order`` (schedulers are made before a checkpoint resumes them).

Introduced in notebooks/04_image_finetuning.ipynb.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import torch

from tlcourse.checkpoint import load_checkpoint, save_checkpoint


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights.

    Args:
        monitor: a History metric, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"`` or ``"max"``.
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        restore_best: load the best epoch's weights back into the model at the end.
    """

    order = 20

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping mode must be 'min' or 'max', not {mode!r}.")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best, self.best_epoch, self.best_state, self.wait = math.inf, 0, None, 0

    def on_epoch_end(self, state) -> None:
        value = state.history.last(self.monitor)
        score = value if self.mode == "min" else -value
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = score, state.epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(state.model.state_dict())
        else:
            self.wait += 1
            state.stop = self.wait >= self.patience

    def on_fit_end(self, state) -> None:
        if self.restore_best and self.best_state is not None:
            state.model.load_state_dict(self.best_state)


class LRScheduler:
    """Create a scheduler from the optimizer and step it per batch (``"step"``) or per epoch.

    Example: ``LRScheduler(lambda opt: OneCycleLR(opt, max_lr=1e-2, total_steps=n), "step")``.
    """

    order = 0

    def __init__(
        self, make: Callable[[torch.optim.Optimizer], object], interval: str = "step"
    ) -> None:
        if interval not in ("step", "epoch"):
            raise ValueError(f"LRScheduler interval must be 'step' or 'epoch', not {interval!r}.")
        self.make, self.interval = make, interval

    def on_fit_start(self, state) -> None:
        state.scheduler = self.make(state.optimizer)

    def on_batch_end(self, state) -> None:
        if self.interval == "step":
            state.scheduler.step()

    def on_epoch_end(self, state) -> None:
        if self.interval == "epoch":
            state.scheduler.step()


class Checkpoint:
    """Save a checkpoint after every ``every`` epochs; on start, resume from it if it exists.

    The checkpoint holds the model, optimizer, scheduler, epoch, history and RNG states, so
    an interrupted run resumed on the CPU in deterministic mode ends with the same weights as
    an uninterrupted one. Writes are atomic (see :func:`tlcourse.checkpoint.atomic_write`).
    """

    order = 10

    def __init__(self, path: str | Path, every: int = 1, resume: bool = True) -> None:
        self.path, self.every, self.resume = Path(path), every, resume

    def on_fit_start(self, state) -> None:
        if not (self.resume and self.path.exists()):
            return
        saved = load_checkpoint(self.path, state.model)
        state.optimizer.load_state_dict(saved["optimizer"])
        if state.scheduler is not None and "scheduler" in saved:
            state.scheduler.load_state_dict(saved["scheduler"])
        state.epoch, state.step = int(saved["epoch"]), int(saved["step"])
        state.history.rows[:] = saved["history"]
        torch.set_rng_state(saved["rng"])
        sampler_rng = _loader_generator(state.train_loader)
        if sampler_rng is not None and "loader_rng" in saved:
            sampler_rng.set_state(saved["loader_rng"])

    def on_epoch_end(self, state) -> None:
        if state.epoch % self.every and state.epoch != state.epochs:
            return
        extra = {}
        if state.scheduler is not None:
            extra["scheduler"] = state.scheduler.state_dict()
        sampler_rng = _loader_generator(state.train_loader)
        if sampler_rng is not None:
            extra["loader_rng"] = sampler_rng.get_state()
        save_checkpoint(
            self.path,
            state.model,
            optimizer=state.optimizer.state_dict(),
            epoch=state.epoch,
            step=state.step,
            history=state.history.rows,
            rng=torch.get_rng_state(),
            **extra,
        )


def _loader_generator(loader) -> torch.Generator | None:
    """The generator that shuffles a DataLoader, if it has its own."""
    sampler = getattr(loader, "sampler", None)
    return getattr(sampler, "generator", None) or getattr(loader, "generator", None)


class SimulatedInterrupt:
    """Raise ``KeyboardInterrupt`` at the end of epoch ``epoch``, as if the user pressed Ctrl-C.

    It runs after :class:`Checkpoint` has saved that epoch, so calling ``fit`` again with the same
    checkpoint resumes where the run stopped. For demonstrations and tests of resuming.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """

    order = 30

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, state) -> None:
        if state.epoch == self.epoch:
            raise KeyboardInterrupt(f"simulated interruption after epoch {state.epoch}")
