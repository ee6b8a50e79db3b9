"""Tiny models and data shared by the unit tests (milliseconds per fit)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.nets import tiny_cnn


def blobs(n: int = 128, num_classes: int = 3, seed: int = 0, size: int = 8) -> TensorDataset:
    """Images whose class sets the mean colour: separable in a few steps."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.randn(n, 3, size, size, generator=g) * 0.5
    x[:, 0] += y.float().view(-1, 1, 1) - 1
    return TensorDataset(x, y)


def loader(
    n: int = 128, num_classes: int = 3, seed: int = 0, batch_size: int = 32, shuffle: bool = True
) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        blobs(n, num_classes, seed), batch_size=batch_size, shuffle=shuffle, generator=g
    )


def model(num_classes: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return tiny_cnn(num_classes, width=4)
