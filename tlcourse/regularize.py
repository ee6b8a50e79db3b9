"""Regularising a fine-tune: L2-SP (pull towards the pretrained start) and learning without forgetting.

Weight decay pulls every weight towards zero, which for a pretrained backbone means *away* from
what it learned; L2-SP (Li, Grandvalet, Davoine 2018) pulls the pretrained weights towards their
starting values instead and decays only the new head. Layer-wise learning-rate decay is
:func:`tlcourse.surgery.discriminative_groups`; label smoothing is
``nn.CrossEntropyLoss(label_smoothing=e)``; mixup / cutmix are in :mod:`tlcourse.augment`.

Introduced in notebooks/12_regularisation_and_robustness.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from tlcourse.distill import kd_loss

HEAD_PREFIX = "head"


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter: the start that L2-SP pulls towards.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def l2sp_penalty(
    model: nn.Module, start_state: dict[str, torch.Tensor], alpha: float, beta: float
) -> torch.Tensor:
    """``alpha/2 · Σ ||w - w0||²`` over pretrained parameters + ``beta/2 · Σ ||w||²`` over the head.

    Parameters whose name starts with ``head`` are the new head (decayed towards zero); every
    other parameter must be in ``start_state`` (its pretrained value ``w0``). Frozen parameters
    add nothing (they equal their start). Returns a scalar tensor with gradients.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha={alpha}, beta={beta}: penalty strengths cannot be negative")
    to_start, to_zero = [], []
    for name, p in model.named_parameters():
        if name.startswith(HEAD_PREFIX):
            to_zero.append(p.pow(2).sum())
        elif name not in start_state:
            raise KeyError(
                f"{name!r} is not in start_state: take the snapshot (regularize.snapshot) from "
                "this model before fine-tuning, after replacing its head"
            )
        elif p.requires_grad:
            to_start.append((p - start_state[name].to(p.device)).pow(2).sum())
    zero = next(model.parameters()).new_zeros(())
    return alpha / 2 * sum(to_start, zero) + beta / 2 * sum(to_zero, zero)


class L2SPLoss(nn.Module):
    """``base(logits, labels) + l2sp_penalty(model, start, alpha, beta)``, usable as ``fit``'s loss.

    The start is snapshotted when the loss is built: build it right before fine-tuning, and
    train with ``weight_decay=0`` (the penalty replaces it; decaying as well would pull the
    pretrained weights towards zero again).

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """

    def __init__(
        self,
        model: nn.Module,
        alpha: float = 0.01,
        beta: float = 0.01,
        base: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model, self.alpha, self.beta = [model], alpha, beta  # a list: not a submodule
        self.start = snapshot(model)
        self.base = base or nn.CrossEntropyLoss()

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        penalty = l2sp_penalty(self.model[0], self.start, self.alpha, self.beta)
        return self.base(logits, labels) + penalty


def lwf_loss(
    new_logits: torch.Tensor,
    labels: torch.Tensor,
    old_logits: torch.Tensor,
    recorded_old_logits: torch.Tensor,
    temperature: float = 2.0,
    weight: float = 1.0,
) -> torch.Tensor:
    """Learning without forgetting (Li and Hoiem 2016): new-task loss + keep the old head's outputs.

    ``new_logits`` ``(N, K_new)`` and ``labels`` ``(N,)`` are the new task; ``old_logits``
    ``(N, K_old)`` are what the model's old head says now and ``recorded_old_logits`` what it said
    before fine-tuning, on the same new-task images (no old data is needed). The second term is
    the distillation loss ``T² · KL(softmax(recorded/T) || softmax(old/T))`` of chapter 08
    (:func:`tlcourse.distill.kd_loss`, the recorded outputs as the teacher).

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    if old_logits.shape != recorded_old_logits.shape:
        raise ValueError(
            f"old head logits {tuple(old_logits.shape)} and recorded ones "
            f"{tuple(recorded_old_logits.shape)} differ: record them with the same old head"
        )
    keep = kd_loss(old_logits, recorded_old_logits, temperature)
    return F.cross_entropy(new_logits, labels) + weight * keep
