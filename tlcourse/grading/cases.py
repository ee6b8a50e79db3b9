"""Random test cases shared by question sets (drawn in the grader's process from its secret seed)."""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.nets import Classifier, tiny_cnn


def random_classifier(
    gen: torch.Generator, num_classes: int | None = None, p_trainable: float = 0.5
) -> Classifier:
    """A tiny random :class:`Classifier` (3 blocks) with random width, class count and requires_grad flags.

    Every draw comes from ``gen``, so the same generator state gives the same model.
    """
    if num_classes is None:
        num_classes = int(torch.randint(2, 10, (1,), generator=gen))
    width = int(torch.randint(2, 5, (1,), generator=gen)) * 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        model = tiny_cnn(num_classes=num_classes, width=width)
    for p in model.parameters():
        p.requires_grad_(bool(torch.rand(1, generator=gen) < p_trainable))
    return model


def bn_tiny_cnn(
    gen: torch.Generator, num_classes: int, width: int, affine: bool = False
) -> Classifier:
    """A tiny CNN in eval mode whose BatchNorm statistics (and, with ``affine``, scales and shifts)
    are moved off their defaults, so that a wrong slice or a skipped BatchNorm shows in the outputs.

    The weights come from a seed drawn from ``gen``; the same generator state gives the same model.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        model = tiny_cnn(num_classes=num_classes, width=width)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                if affine:
                    m.weight.data.uniform_(0.5, 1.5)
                    m.bias.data.uniform_(-0.5, 0.5)
    return model.eval()
