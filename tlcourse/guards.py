"""Checks at the door of ``fit`` / ``evaluate`` / ``predict``: bad input never passes quietly.

Each check is cheap (types, dtypes and shapes of the arguments and of the first batch, never a
pass over the data) and raises a ``TypeError`` or ``ValueError`` whose message says what to do:
uint8 images, channels-last or grayscale images for an RGB model, float labels, ``epochs=0``,
a learning rate given as a string, an empty loader, a Dataset where a DataLoader belongs, ...
(``tests/test_bad_input.py`` lists them). :mod:`tlcourse.engine` calls them.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


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


EMPTY = (
    "The {what} loader is empty (0 batches): check the dataset folder and split, and that "
    "batch_size is not larger than the dataset with drop_last=True."
)


def check_fit_args(model, loader, epochs, optimizer, lr, loss_fn, batch_loss, callbacks) -> None:
    """Raise a ``TypeError``/``ValueError`` that names the fix for a bad ``fit`` argument."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}.")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral):
        raise TypeError(f"epochs={epochs!r}: pass a whole number of passes, e.g. epochs=3.")
    if epochs < 1:
        raise ValueError(f"epochs={epochs}: train for at least one epoch (epochs=1 or more).")
    if optimizer is None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real)):
        raise TypeError(f"lr={lr!r} is a {type(lr).__name__}: pass a number, e.g. lr=1e-3.")
    if optimizer is None and not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr}: the learning rate must be a positive number, e.g. lr=1e-3.")
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer is a {type(optimizer).__name__}: pass an optimizer instance, e.g. "
            "torch.optim.AdamW(model.parameters(), lr=1e-3), not the class or a function."
        )
    if loss_fn is not None and batch_loss is not None:
        raise ValueError("Pass loss_fn(logits, y) or batch_loss(logits, batch), not both.")
    if not isinstance(callbacks, Sequence):
        raise TypeError("callbacks must be a list, e.g. callbacks=[EarlyStopping(patience=3)].")
    if isinstance(loader, torch.utils.data.Dataset) and not isinstance(
        loader, torch.utils.data.DataLoader
    ):
        raise TypeError(
            "train_loader is a Dataset, not a DataLoader: wrap it, e.g. "
            "DataLoader(dataset, batch_size=32, shuffle=True)."
        )
    if _length(loader) == 0:
        raise ValueError(EMPTY.format(what="training"))


def check_step_args(frozen_bn: str, accumulate: int, clip_grad: float | None) -> None:
    """Raise an error that names the fix for a bad ``frozen_bn``/``accumulate``/``clip_grad``."""
    if frozen_bn not in ("eval", "train"):
        raise ValueError(f"frozen_bn={frozen_bn!r}: use 'eval' (keep statistics) or 'train'.")
    if isinstance(accumulate, bool) or not isinstance(accumulate, int) or accumulate < 1:
        raise ValueError(f"accumulate={accumulate!r}: micro-batches per step, a whole number >= 1.")
    if clip_grad is not None and not (isinstance(clip_grad, numbers.Real) and clip_grad > 0):
        raise ValueError(f"clip_grad={clip_grad!r}: a positive max norm (e.g. 1.0) or None.")


def check_batch(model: nn.Module, batch: Any, where: str, labels: bool = True) -> None:
    """Check one batch against ``model`` (cheap: dtypes and shapes only); names the fix."""
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise TypeError(
            f"{where}: each batch must be a pair (x, y), got {type(batch).__name__}; a "
            "DataLoader over a Dataset whose items are (input, label) gives that."
        )
    x, y = batch[0], batch[1]
    if _tensors(x) and isinstance(y, torch.Tensor) and not isinstance(x, torch.Tensor):
        return  # several inputs (a tuple or dict of tensors): the model's forward checks them
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(
            f"{where}: x and y must be tensors, got {type(x).__name__} and {type(y).__name__}; "
            "add transforms that end in a tensor (e.g. v2.ToImage(), v2.ToDtype(...))."
        )
    if x.dtype == torch.uint8:
        raise TypeError(
            f"{where}: the images are uint8 (0..255) but the model wants floats: convert "
            "them with v2.ToDtype(torch.float32, scale=True) in the transform (then normalise)."
        )
    weight = next((p for p in model.parameters() if p.is_floating_point()), None)
    if x.is_floating_point() and weight is not None and x.dtype != weight.dtype:
        raise TypeError(
            f"{where}: x is {x.dtype} but the model's weights are {weight.dtype}: convert "
            f"the inputs (x.to({weight.dtype})) or the model (model.to({x.dtype}))."
        )
    _check_channels(model, x, where)
    if len(x) != len(y):
        raise ValueError(f"{where}: x has {len(x)} examples but y has {len(y)}: pair them 1:1.")
    if labels:
        check_label_dtype(y, where)


def _tensors(x: Any) -> bool:
    """True for a tensor, or a non-empty tuple / list / dict of tensors (a multi-input model)."""
    items = list(x.values()) if isinstance(x, dict) else x
    if isinstance(items, torch.Tensor):
        return True
    return (
        isinstance(items, list | tuple)
        and bool(items)
        and all(isinstance(t, torch.Tensor) for t in items)
    )


def _check_channels(model: nn.Module, x: torch.Tensor, where: str) -> None:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None or x.dim() not in (3, 4) or not x.is_floating_point():
        return
    if x.dim() == 3:
        raise ValueError(
            f"{where}: x has shape {tuple(x.shape)}, but a conv net wants (N, C, H, W): batch "
            "single images with a DataLoader, or add the channel axis with x.unsqueeze(1)."
        )
    channels = x.shape[1]
    if channels == conv.in_channels:
        return
    if x.shape[-1] == conv.in_channels:
        fix = "the images are channels-last (N, H, W, C): use x.permute(0, 3, 1, 2) or v2.ToImage()"
    elif channels == 1 and conv.in_channels == 3:
        fix = "grayscale images for an RGB model: v2.Grayscale(num_output_channels=3) in the transform"
    else:
        fix = f"give the model a first layer with {channels} input channels or convert the images"
    raise ValueError(
        f"{where}: x has {channels} channels (shape {tuple(x.shape)}) but the model's first "
        f"convolution expects {conv.in_channels}: {fix}."
    )


def check_label_dtype(y: torch.Tensor, where: str) -> None:
    if y.is_floating_point():
        raise TypeError(
            f"{where}: the labels are {y.dtype}, but cross-entropy wants class indices: use "
            "y.long() (or pass a loss_fn made for float targets, e.g. BCEWithLogitsLoss)."
        )
    if y.dim() == 2 and y.shape[1] == 1:
        raise ValueError(f"{where}: labels of shape {tuple(y.shape)}: use y.squeeze(1) -> (N,).")


def _length(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def check_num_classes(num_classes: Any, where: str = "the head") -> int:
    """``num_classes`` as an ``int`` >= 1, or an error that names the fix (for head builders)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Real):
        raise TypeError(f"{where}: num_classes={num_classes!r}: pass a whole number, e.g. 10.")
    if num_classes != int(num_classes) or num_classes < 1:
        raise ValueError(
            f"{where}: num_classes={num_classes!r}: a head needs a whole number of classes >= 1 "
            "(count them with len(dataset.classes))."
        )
    return int(num_classes)
