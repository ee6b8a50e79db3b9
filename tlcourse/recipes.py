"""Transfer recipes: feature extraction, linear probe, fine-tune, gradual unfreezing.

Each recipe takes a :class:`~tlcourse.nets.Classifier` (``backbone`` + ``head``) whose head
already has the target's ``num_classes`` (see :func:`tlcourse.zoo.load` or
:func:`tlcourse.surgery.replace_head`) and returns a :class:`~tlcourse.engine.History` whose
rows carry a ``stage`` name and a running ``epoch`` count.

Introduced in notebooks/00_welcome.ipynb; used throughout the course.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.callbacks import LRScheduler
from tlcourse.engine import History, fit, predict
from tlcourse.surgery import blocks, discriminative_groups, freeze, unfreeze


def extract_features(
    backbone: nn.Module, loader: Iterable, *, device: str | torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``backbone`` in eval mode over ``loader``: ``(features (N, D), targets (N,))`` on the CPU.

    A backbone's outputs are features, so this is :func:`tlcourse.engine.predict` by its
    transfer-learning name.
    """
    return predict(backbone, loader, device=device)


def feature_loader(
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
) -> DataLoader:
    """A loader over cached ``(features (N, D), targets (N,))`` (shuffled repeatably)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        TensorDataset(features, targets),
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
    )


def logistic_probe(
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    C: float = 1.0,
) -> float:
    """Accuracy of a standardised logistic regression fitted on cached features ``train``, scored on ``test``."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    probe.fit(train[0].numpy(), train[1].numpy())
    return float(probe.score(test[0].numpy(), test[1].numpy()))


def staged(histories: Sequence[tuple[str, History]]) -> History:
    """Join the histories of consecutive stages; rows get ``stage`` and a running ``epoch``."""
    rows, offset = [], 0
    for stage, history in histories:
        rows += [{**row, "epoch": offset + row["epoch"], "stage": stage} for row in history.rows]
        offset += len(history)
    return History(rows)


def linear_probe(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int = 30,
    lr: float = 1e-2,
    val_loader: Iterable | None = None,
    weight_decay: float = 1e-4,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> History:
    """Freeze the backbone, cache its features once, and train only ``model.head`` on them.

    Caching makes each epoch a few matrix products instead of a pass through the backbone
    (augmentations in ``train_loader`` are applied once, not per epoch).
    """
    freeze(model.backbone)
    unfreeze(model.head)
    train = feature_loader(*extract_features(model.backbone, train_loader, device=device))
    val = None
    if val_loader is not None:
        val = feature_loader(
            *extract_features(model.backbone, val_loader, device=device), shuffle=False
        )
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(
        model.head,
        train,
        epochs=epochs,
        optimizer=optimizer,
        val_loader=val,
        device=device,
        progress=progress,
    )
    return staged([("linear probe", history)])


def one_cycle(epochs: int, steps_per_epoch: int) -> LRScheduler:
    """A one-cycle schedule over ``epochs`` (peak at each group's own lr), stepped per batch."""
    return LRScheduler(
        lambda opt: OneCycleLR(
            opt,
            max_lr=[g["lr"] for g in opt.param_groups],
            total_steps=max(1, epochs * steps_per_epoch),
        )
    )


def fine_tune(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    lr: float = 1e-3,
    head_epochs: int = 1,
    lr_factor: float = 0.3,
    val_loader: Iterable | None = None,
    callbacks: Sequence = (),
    frozen_bn: str = "eval",
    weight_decay: float = 1e-4,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> History:
    """fastai-style fine-tuning: train the head alone, then everything with discriminative lrs.

    Stage 1 (``head_epochs``): backbone frozen, head at ``lr``. Stage 2 (``epochs``): all
    unfrozen; the head at ``lr / 2`` and each backbone block ``lr_factor`` times the block above
    it; one-cycle schedule. ``callbacks`` apply to stage 2.
    """
    train = functools.partial(
        fit,
        model,
        train_loader,
        val_loader=val_loader,
        frozen_bn=frozen_bn,
        device=device,
        progress=progress,
    )
    histories = []
    if head_epochs:
        freeze(model.backbone)
        unfreeze(model.head)
        opt = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=weight_decay)
        histories.append(("head", train(epochs=head_epochs, optimizer=opt)))
    unfreeze(model)
    groups = discriminative_groups(model, lr=lr / 2, factor=lr_factor)
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    schedule = one_cycle(epochs, _steps(train_loader))
    histories.append(
        ("all layers", train(epochs=epochs, optimizer=opt, callbacks=[schedule, *callbacks]))
    )
    return staged(histories)


def gradual_unfreeze(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs_per_stage: int = 1,
    lr: float = 1e-3,
    lr_factor: float = 0.3,
    max_blocks: int | None = None,
    val_loader: Iterable | None = None,
    weight_decay: float = 1e-4,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> History:
    """ULMFiT-style: train the head, then unfreeze one more backbone block per stage, top down.

    Stage ``s`` trains the head and the top ``s`` blocks with discriminative lrs for
    ``epochs_per_stage`` epochs; ``max_blocks`` limits how deep the unfreezing goes.
    """
    train = functools.partial(
        fit,
        model,
        train_loader,
        epochs=epochs_per_stage,
        val_loader=val_loader,
        device=device,
        progress=progress,
    )
    names = [n for n, _ in blocks(model)]
    depth = len(names) if max_blocks is None else min(max_blocks, len(names))
    histories = []
    for s in range(depth + 1):
        freeze(model.backbone)
        for name in names[len(names) - s :]:
            unfreeze(model, f"backbone.{name}")
        unfreeze(model.head)
        groups = discriminative_groups(model, lr=lr, factor=lr_factor)
        opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
        histories.append(("head" if s == 0 else f"+{names[len(names) - s]}", train(optimizer=opt)))
    return staged(histories)


def _steps(loader: Iterable) -> int:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return int(np.ceil(sum(1 for _ in loader)))
