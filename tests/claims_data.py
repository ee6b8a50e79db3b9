"""Small, shared pieces for the chapter 02/03 claims tests: the course backbone on glyph digits."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import zoo
from tlcourse.datasets import catalog, splits
from tlcourse.recipes import extract_features

BACKBONE = "glyphnet-s"


def subset(name: str, split: str, per_class: int, seed: int = 0):
    """``(images uint8 (N, 3, 32, 32), targets (N,))``: ``per_class`` images of each class."""
    data = catalog.load(name, split)
    idx = splits.labels_per_class_subset(data.targets, per_class, seed)
    return data.images[idx], data.targets[idx]


def features(
    backbone, transform, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Backbone features of uint8 images ``x`` preprocessed (as a batch) with ``transform``."""
    inputs = torch.as_tensor(transform(x)).as_subclass(torch.Tensor)
    return extract_features(
        backbone, DataLoader(TensorDataset(inputs, y), batch_size=256), device="cpu"
    )


def backbone_and_preprocessing():
    return zoo.load_backbone(BACKBONE).eval(), zoo.preprocessing(BACKBONE)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)
