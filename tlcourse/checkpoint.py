"""Checkpoints that survive interruptions and refuse to load into the wrong model.

A checkpoint is one ``torch.save`` file of tensors, numbers and strings only, so it loads with
``torch.load(weights_only=True)`` (no arbitrary unpickling). It is written atomically: to a
temporary file in the same folder, flushed to disk, then renamed over the old one, so an
interruption while saving leaves the previous checkpoint intact.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcourse.atomic import atomic_write


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model it is loaded into."""


def architecture(model: nn.Module) -> dict[str, list[int]]:
    """The model's parameter and buffer names with their shapes: its fingerprint."""
    return {name: list(t.shape) for name, t in model.state_dict().items()}


def check_compatible(expected: dict[str, list[int]], model: nn.Module, source: str) -> None:
    """Raise :class:`CheckpointMismatchError` naming the differences if shapes do not match."""
    actual = architecture(model)
    missing = sorted(set(actual) - set(expected))
    unexpected = sorted(set(expected) - set(actual))
    resized = [k for k in actual if k in expected and actual[k] != expected[k]]
    if not (missing or unexpected or resized):
        return
    parts = []
    if resized:
        k = resized[0]
        parts.append(
            f"{len(resized)} tensor(s) differ in shape, e.g. {k}: {expected[k]} in the file vs {actual[k]} in the model"
        )
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing from the file, e.g. {missing[0]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensor(s) in the file, e.g. {unexpected[0]}")
    raise CheckpointMismatchError(
        f"{source} was saved from a different architecture: {'; '.join(parts)}. "
        "Build the same model (same backbone and num_classes) before loading, "
        "or use a new checkpoint path to start a fresh run."
    )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **state: Any) -> Path:
    """Atomically save ``model``'s weights, its architecture fingerprint and extra ``state``.

    ``state`` holds plain data or state dicts, e.g. ``optimizer=opt.state_dict(), epoch=3``.
    """
    payload = {"model": model.state_dict(), "architecture": architecture(model), **state}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, model: nn.Module) -> dict[str, Any]:
    """Load the weights in ``path`` into ``model`` (after checking the architecture).

    Returns the remaining saved state (optimizer state, epoch, ...). Raises
    ``FileNotFoundError`` or :class:`CheckpointMismatchError` with the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {path}. Check the path, or train first to create it."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointMismatchError(
            f"{path} is not a readable tlcourse checkpoint ({type(err).__name__}: {err}). "
            "Delete it to start a fresh run."
        ) from err
    check_compatible(payload.pop("architecture"), model, f"The checkpoint {path}")
    model.load_state_dict(payload.pop("model"))
    return payload
