"""Chapter 12 (regularisation and robustness): the L2-SP penalty, FGSM in pixel space through a
model's normalisation, and the class probabilities of one prototypical episode.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/12_regularisation_and_robustness.ipynb.

Introduced in exercises/12_regularisation_and_robustness.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.questions import OpenQuestion, Question, same


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return round(float(torch.empty(()).uniform_(low, high, generator=gen)), 4)


def within_1e4(got: Any, expected: Any) -> str | None:
    """Like ``same``, with room for another order of summation (1e-4)."""
    return same(got, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------------ 12.1 L2-SP


def cases_l2sp(gen: torch.Generator) -> list[tuple]:
    """Pretrained weights moved by a random step, new parameters absent from ``start``; the new
    names do not start with ``head`` (the rule is: no pretrained value)."""
    cases = []
    for n_pre, n_new in ((2, 1), (3, 2), (1, 3)):
        start = {f"features.{i}.weight": torch.randn(3, 2 + i, generator=gen) for i in range(n_pre)}
        params = {k: v + 0.3 * torch.randn(v.shape, generator=gen) for k, v in start.items()}
        for j in range(n_new):
            params[f"classifier.{j}.weight"] = torch.randn(2, 3, generator=gen)
        cases.append((params, start, _uniform(gen, 0.01, 1.0), _uniform(gen, 0.001, 0.5)))
    return cases


# ------------------------------------------------------------------------- 12.2 FGSM


def _net(gen: torch.Generator, classes: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, classes)
        ).eval()


def cases_fgsm(gen: torch.Generator) -> list[tuple]:
    """A small model on normalised 6x6 images; pixels in [0, 1] with some at 0 and 1 (so that
    clipping matters); eps between 2/255 and 16/255; per-channel statistics."""
    cases = []
    for n, classes in ((4, 3), (6, 5)):
        images = torch.rand(n, 3, 6, 6, generator=gen)
        edge = torch.rand(n, 3, 6, 6, generator=gen) < 0.2
        images[edge] = images[edge].round()
        labels = torch.randint(0, classes, (n,), generator=gen)
        mean = tuple(_uniform(gen, 0.3, 0.7) for _ in range(3))
        std = tuple(_uniform(gen, 0.15, 0.35) for _ in range(3))
        eps = _uniform(gen, 2 / 255, 16 / 255)
        cases.append((_net(gen, classes), images, labels, eps, mean, std))
    return cases


# --------------------------------------------------------------- 12.3 prototypical episode


def cases_episode(gen: torch.Generator) -> list[tuple]:
    """N-way K-shot episodes with shuffled support labels; embeddings around random centres."""
    cases = []
    for n_way, k_shot, n_query, dim in ((3, 1, 4, 5), (5, 3, 7, 8), (4, 2, 6, 3)):
        centres = 2 * torch.randn(n_way, dim, generator=gen)
        labels = torch.arange(n_way).repeat_interleave(k_shot)
        labels = labels[torch.randperm(len(labels), generator=gen)]
        support = centres[labels] + torch.randn(len(labels), dim, generator=gen)
        query = centres[torch.randint(0, n_way, (n_query,), generator=gen)]
        query = query + torch.randn(n_query, dim, generator=gen)
        cases.append((support, labels, query, n_way))
    return cases


QUESTIONS = [
    Question(
        id="12.1",
        function="l2sp_terms",
        points=2,
        title="the L2-SP penalty",
        cases=cases_l2sp,
        compare=within_1e4,
        hint="a parameter with an entry in start is pulled towards that value, one without it "
        "(a new head) towards zero; each term is half its strength times a sum of squares.",
    ),
    Question(
        id="12.2",
        function="fgsm_pixels",
        points=2,
        title="FGSM in pixel space",
        cases=cases_fgsm,
        hint="the attack's budget is in pixels: take the gradient with respect to the pixels, "
        "through the normalisation; only its sign matters; the result must stay valid pixels.",
    ),
    Question(
        id="12.3",
        function="prototype_log_probs",
        points=2,
        title="one prototypical episode",
        cases=cases_episode,
        compare=within_1e4,
        hint="a prototype is the mean support embedding of its class (labels are not sorted); "
        "logits are minus the squared distances; normalise them over the classes, in log space.",
    ),
    OpenQuestion(id="12.4", points=3, title="which regulariser first?"),
]
