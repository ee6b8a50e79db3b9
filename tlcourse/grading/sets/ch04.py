"""Chapter 04 (image fine-tuning in PyTorch): partial freezing, discriminative learning rates,
reading a learning rate off a range-test curve, and finding the most confident mistakes.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/04_image_finetuning.ipynb.

Introduced in exercises/04_image_finetuning.ipynb.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tlcourse.grading.observers import trainable_flags
from tlcourse.grading.questions import OpenQuestion, Question, same
from tlcourse.nets import Classifier, conv_block


def _model(gen: torch.Generator) -> Classifier:
    """A tiny Classifier with 2-4 conv blocks (+ a parameter-free pool) and random flags."""
    depth = int(torch.randint(2, 5, (1,), generator=gen))
    width = int(torch.randint(1, 3, (1,), generator=gen)) * 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=conv_block(3, width))
        for i in range(1, depth):
            layers[f"block{i}"] = conv_block(width, width)
        layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        model = Classifier(
            nn.Sequential(layers), nn.Linear(width, int(torch.randint(2, 9, (1,), generator=gen)))
        )
    for p in model.parameters():
        p.requires_grad_(bool(torch.rand(1, generator=gen) < 0.5))
    return model


def cases_model(gen: torch.Generator) -> list[tuple]:
    return [(_model(gen),) for _ in range(3)]


# ------------------------------------------------------------- 04.1 train only the last block


# ------------------------------------------------------------ 04.2 discriminative rates


def cases_discriminative(gen: torch.Generator) -> list[tuple]:
    cases = []
    for _ in range(3):
        lr = float(10 ** -float(torch.randint(1, 4, (1,), generator=gen)))
        factor = [0.1, 0.3, 0.5][int(torch.randint(0, 3, (1,), generator=gen))]
        cases.append((_model(gen), lr, factor))
    return cases


# --------------------------------------------------------------------- 04.3 smooth losses


def cases_smooth(gen: torch.Generator) -> list[tuple]:
    cases = []
    for n, beta in ((5, 0.5), (12, 0.9), (8, 0.0)):
        cases.append(((torch.rand(n, generator=gen) * 3).tolist(), beta))
    return cases


# -------------------------------------------------------------- 04.4 lr from a range test


def _curve(gen: torch.Generator) -> tuple[list[float], list[float]]:
    """A range-test-like curve: flat, a drop centred at a random rate, then a blow-up."""
    lrs = np.geomspace(1e-6, 1.0, 61)
    centre = float(torch.empty(1).uniform_(-4.5, -2.0, generator=gen))
    width = float(torch.empty(1).uniform_(1.5, 4.0, generator=gen))
    x = np.log10(lrs)
    losses = 2.5 - 1.8 / (1 + np.exp(-(x - centre) * width))
    losses += np.where(x > centre + 1.5, 4.0 * (x - centre - 1.5) ** 2, 0.0)
    return lrs.tolist(), losses.tolist()


def cases_curve(gen: torch.Generator) -> list[tuple]:
    return [_curve(gen) for _ in range(3)]


def within_a_grid_step(got: object, expected: float) -> str | None:
    """Accept the expected rate or a neighbouring point of the grid (different slope formulas)."""
    if type(got) not in (float, int) or not got > 0:
        return f"the result: expected a positive float learning rate, got {got!r}"
    ratio = max(got / expected, expected / got)
    return None if ratio < 1.6 else f"the result: expected about {expected:.3g}, got {got:.3g}"


# ---------------------------------------------------------------- 04.5 confident mistakes


def cases_mistakes(gen: torch.Generator) -> list[tuple]:
    cases = []
    for n, c, k in ((20, 3, 4), (50, 5, 10), (12, 4, 30)):
        logits = torch.randn(n, c, generator=gen) * 2
        cases.append((logits, torch.randint(0, c, (n,), generator=gen), k))
    return cases


QUESTIONS = [
    Question(
        id="04.1",
        function="freeze_all_but_last_block",
        points=2,
        title="partial fine-tuning: only the last block and the head train",
        cases=cases_model,
        observe=trainable_flags,
        hint="the last child of model.backbone may hold no parameters (a pooling layer): take the "
        "last block that has parameters; parameters may arrive frozen or trainable.",
    ),
    Question(
        id="04.2",
        function="discriminative_lrs",
        points=2,
        title="discriminative learning rates",
        cases=cases_discriminative,
        compare=same,
        hint="the head gets lr, the last block with parameters lr * factor, the one before it "
        "lr * factor**2, ...; include only parameters with requires_grad=True.",
    ),
    Question(
        id="04.3",
        function="smooth",
        points=1,
        title="smooth a noisy loss curve",
        cases=cases_smooth,
        hint="keep avg = beta * avg + (1 - beta) * loss starting from 0, and divide the i-th "
        "average (i from 1) by 1 - beta**i.",
    ),
    Question(
        id="04.4",
        function="steepest_lr",
        points=2,
        title="read a learning rate off a range-test curve",
        cases=cases_curve,
        compare=within_a_grid_step,
        hint="look only up to the lowest loss; the slope is the change in loss per change in "
        "log10(lr) (np.gradient works); return the rate where it is most negative.",
    ),
    Question(
        id="04.5",
        function="confident_mistakes",
        points=2,
        title="the most confidently wrong predictions",
        cases=cases_mistakes,
        hint="softmax the logits; keep rows whose argmax is not the target; sort them by the "
        "probability of the predicted class, highest first; at most k indices, as a list of int.",
    ),
    OpenQuestion(id="04.6", points=2, title="a frozen backbone that still changes"),
]
