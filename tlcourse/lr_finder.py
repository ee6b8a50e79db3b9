"""Learning-rate range test (Smith, 2017; fastai's ``lr_find``) and picking a rate from its curve.

The test trains for a few dozen steps while the learning rate grows exponentially from tiny to
huge, records the (smoothed) loss at each rate, stops once the loss explodes, and then puts the
model and optimizer back as they were. A good peak learning rate sits where the loss falls
fastest (``"steepest"``), or a tenth of the rate with the lowest loss (``"min/10"``).

Introduced in notebooks/04_image_finetuning.ipynb.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from tlcourse.progress import progress_bar
from tlcourse.repro import pick_device
from tlcourse.surgery import set_bn_eval

METHODS = ("steepest", "min/10")


@dataclass
class RangeTest:
    """The curve of a range test: ``lrs[i]`` and the smoothed ``losses[i]`` after step ``i``."""

    lrs: list[float]
    losses: list[float]
    raw_losses: list[float]

    def suggest(self, method: str = "steepest") -> float:
        """The suggested peak learning rate (see :func:`suggest_lr`)."""
        return suggest_lr(self.lrs, self.losses, method)

    def plot(self, mark: float | None = None) -> Figure:
        """Loss against learning rate (log axis); ``mark`` draws a vertical line at a chosen rate."""
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.4))
        ax.plot(self.lrs, self.raw_losses, alpha=0.3, label="loss")
        ax.plot(self.lrs, self.losses, label="smoothed")
        if mark is not None:
            ax.axvline(mark, color="C3", linestyle="--", label=f"chosen lr = {mark:.1e}")
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="LR range test")
        ax.set_ylim(top=min(max(self.losses), 3 * self.losses[0]))
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        return fig


def smooth_losses(losses: Sequence[float], smoothing: float = 0.9) -> list[float]:
    """Bias-corrected exponential moving average of ``losses`` (as in Adam and fastai).

    ``avg_i = smoothing * avg_{i-1} + (1 - smoothing) * loss_i`` from ``avg_0 = 0``, returned as
    ``avg_i / (1 - smoothing ** i)`` so the first values are not pulled towards zero.
    """
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}.")
    avg, out = 0.0, []
    for i, loss in enumerate(losses, start=1):
        avg = smoothing * avg + (1 - smoothing) * float(loss)
        out.append(avg / (1 - smoothing**i))
    return out


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], method: str = "steepest") -> float:
    """Pick a learning rate from a range-test curve (rates increasing, losses smoothed).

    ``"steepest"``: the rate where the loss falls fastest per decade of learning rate, looking
    only before the minimum. ``"min/10"``: a tenth of the rate with the lowest loss.
    """
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; use one of {METHODS}.")
    if len(lrs) != len(losses) or len(lrs) < 3:
        raise ValueError(
            f"Need >= 3 (lr, loss) points of equal length; got {len(lrs)} and {len(losses)}."
        )
    lowest = int(np.argmin(losses))
    if method == "min/10":
        return float(lrs[lowest] / 10)
    end = max(lowest, 2) + 1
    slope = np.gradient(losses[:end], np.log10(lrs[:end]))
    return float(lrs[int(np.argmin(slope))])


def lr_range_test(
    model: nn.Module,
    loader: Iterable,
    *,
    start_lr: float = 1e-6,
    end_lr: float = 1.0,
    num_steps: int = 100,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: nn.Module | None = None,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> RangeTest:
    """Train ``num_steps`` batches with the lr growing from ``start_lr`` to ``end_lr``; undo it all.

    ``loader`` yields ``(x (N, ...), y (N,))`` and is cycled if it is short. With an
    ``optimizer`` whose groups have different rates (discriminative lrs), every group is scaled
    together and the curve shows the rate of the fastest group. Stops early once the smoothed
    loss exceeds ``diverge`` times its minimum. Frozen BatchNorm layers stay in eval mode.
    The model's weights and the optimizer's state are restored afterwards.
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"Need 0 < start_lr < end_lr; got start_lr={start_lr}, end_lr={end_lr}.")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    model.to(device)
    optimizer = optimizer or torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=start_lr
    )
    saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    try:
        return _run(
            model,
            loader,
            optimizer,
            loss_fn or nn.CrossEntropyLoss(),
            device,
            np.geomspace(start_lr, end_lr, num_steps),
            smoothing,
            diverge,
            progress,
        )
    finally:
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])


def _forever(loader: Iterable) -> Iterator:
    """Batches of ``loader`` pass after pass (re-iterated, so nothing is held in memory)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("The loader is empty: the range test needs at least one batch.")


def _run(
    model, loader, optimizer, loss_fn, device, schedule, smoothing, diverge, progress
) -> RangeTest:
    """The loop of :func:`lr_range_test`: one step per scheduled rate, smoothed loss, early stop."""
    ratios = [
        g["lr"] / max(gr["lr"] for gr in optimizer.param_groups) for g in optimizer.param_groups
    ]
    model.train()
    set_bn_eval(model)
    lrs, raw, best = [], [], math.inf
    bar = progress_bar(total=len(schedule), enabled=progress, desc="lr range test")
    for lr, (x, y) in zip(schedule, _forever(loader), strict=False):
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            group["lr"] = float(lr) * ratio
        loss = loss_fn(model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lrs.append(float(lr)), raw.append(float(loss.detach()))
        smooth = smooth_losses(raw, smoothing)[-1]
        best = min(best, smooth)
        bar.update(1)
        if not math.isfinite(smooth) or smooth > diverge * best:
            break
    bar.close()
    return RangeTest(lrs, smooth_losses(raw, smoothing), raw)
