"""Random test cases shared by question sets (drawn in the grader's process from its secret seed)."""

from __future__ import annotations

import torch

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
