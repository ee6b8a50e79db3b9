"""Chapter 02 (preparing data): cached inputs moved to another backbone, class weights for a
deployment prior, groups of near-duplicates, per-class recall, balanced sampling weights.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/02_preparing_data.ipynb.

Introduced in exercises/02_preparing_data.ipynb.
"""

from __future__ import annotations

import math
import types

import numpy as np
import torch

from tlcourse.grading.data_observers import (
    as_float32,
    normalised_weights,
)
from tlcourse.grading.questions import OpenQuestion, Question, same


def _int(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


# ------------------------------------------------------- 02.1 cached inputs, another backbone


def _entry(gen: torch.Generator, size: int) -> types.SimpleNamespace:
    mean = [round(v, 3) for v in (torch.rand(3, generator=gen) * 0.6 + 0.2).tolist()]
    std = [round(v, 3) for v in (torch.rand(3, generator=gen) * 0.25 + 0.1).tolist()]
    return types.SimpleNamespace(name="candidate", mean=mean, std=std, input_size=(3, size, size))


def cases_reprocess(gen: torch.Generator) -> list[tuple]:
    """A batch normalised for one random backbone description, and another description."""
    cases = []
    for n in (2, 5, 3):
        size = _int(gen, 4, 17)
        old, new = _entry(gen, size), _entry(gen, size)
        pixels = torch.randint(0, 256, (n, 3, size, size), generator=gen) / 255
        mean, std = torch.tensor(old.mean).view(1, 3, 1, 1), torch.tensor(old.std).view(1, 3, 1, 1)
        cases.append(((pixels - mean) / std, old, new))
    return cases


def close(got: object, expected: object) -> str | None:
    """:func:`same` with a float32 tolerance (the operations may run in another order)."""
    return same(got, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------- 02.2 weights for a class prior


def cases_targets(gen: torch.Generator) -> list[tuple]:
    """Imbalanced label vectors in which every class occurs."""
    cases = []
    for num_classes in (2, 5, 9):
        counts = torch.randint(1, 30, (num_classes,), generator=gen)
        targets = torch.repeat_interleave(torch.arange(num_classes), counts)
        cases.append((targets[torch.randperm(len(targets), generator=gen)], num_classes))
    return cases


def cases_prior(gen: torch.Generator) -> list[tuple]:
    """Imbalanced labels and deployment frequencies: random ones, and a uniform prior."""
    cases = []
    for i, (targets, num_classes) in enumerate(cases_targets(gen)):
        prior = torch.rand(num_classes, generator=gen) + 0.05
        if i == 1:
            prior = torch.ones(num_classes)
        cases.append((targets, prior / prior.sum()))
    return cases


# ------------------------------------------------------------ 02.3 groups of near-duplicates


def _orthonormal_pair(gen: torch.Generator, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    q, _ = torch.linalg.qr(torch.randn(dim, 2, generator=gen))
    return q[:, 0], q[:, 1]


def cases_duplicates(gen: torch.Generator) -> list[tuple]:
    """Random originals with 1-3 noisy copies each, plus a chain (neighbours above the threshold,
    its ends below), rows shuffled."""
    cases = []
    for n_originals, dim, threshold in ((6, 8, 0.9), (10, 16, 0.95), (8, 12, 0.9)):
        rows = []
        for base in torch.randn(n_originals, dim, generator=gen):
            for _ in range(_int(gen, 1, 4)):
                rows.append(base + 0.03 * base.norm() * torch.randn(dim, generator=gen))
        step = 0.9 * math.acos(threshold)
        a, b = _orthonormal_pair(gen, dim)
        rows += [math.cos(k * step) * a + math.sin(k * step) * b for k in range(4)]
        features = torch.stack(rows) * (torch.rand(len(rows), 1, generator=gen) + 0.5)
        cases.append((features[torch.randperm(len(rows), generator=gen)], threshold))
    return cases


def partition(result: object, args: tuple) -> object:
    """The grouping, whatever the numbering: ids renumbered in order of first appearance."""
    try:
        ids = np.asarray(
            result.detach().cpu() if isinstance(result, torch.Tensor) else result
        ).ravel()
    except (TypeError, ValueError):
        return {"error": f"expected one group id per row, got {type(result).__name__}"}
    if len(ids) != len(args[0]):
        return {"error": f"expected {len(args[0])} group ids, got {len(ids)}"}
    first: dict = {}
    return [first.setdefault(i.item() if hasattr(i, "item") else i, len(first)) for i in ids]


# --------------------------------------------------------------------- 02.4 per-class recall


def cases_recall(gen: torch.Generator) -> list[tuple]:
    """Logits and labels; one case has a class with no examples (recall 0 by convention)."""
    cases = []
    for n, c in ((30, 3), (50, 6), (12, 4)):
        labels = torch.randint(0, c - (n == 12), (n,), generator=gen)
        logits = torch.randn(n, c, generator=gen)
        logits[torch.arange(n), labels] += torch.rand(n, generator=gen) * 2  # better than chance
        cases.append((logits, labels, c))
    return cases


# -------------------------------------------------------------- 02.5 balanced sampling weights


def cases_sample_weights(gen: torch.Generator) -> list[tuple]:
    return [(case[0],) for case in cases_targets(gen)]


QUESTIONS = [
    Question(
        id="02.1",
        function="reprocess",
        points=2,
        title="cached inputs, another backbone",
        cases=cases_reprocess,
        observe=as_float32,
        compare=close,
        hint="both backbones start from the same [0, 1] pixels; a per-channel normalisation can be "
        "undone, and its statistics must broadcast over (N, 3, H, W).",
    ),
    Question(
        id="02.2",
        function="prior_weights",
        points=1,
        title="weights for the class mix you will meet",
        cases=cases_prior,
        observe=normalised_weights,
        hint="a class's total weight in the loss is its weight times its count in training; the "
        "chapter's balanced weights are the case of a uniform prior.",
    ),
    Question(
        id="02.3",
        function="duplicate_groups",
        points=2,
        title="groups a dataset does not record",
        cases=cases_duplicates,
        observe=partition,
        hint="'same group' is transitive: a copy of a copy belongs with the original even when the "
        "two are not similar enough themselves (think of the pairs as edges of a graph).",
    ),
    Question(
        id="02.4",
        function="recall_per_class",
        points=1,
        title="per-class recall",
        cases=cases_recall,
        observe=as_float32,
        hint="for each class c: among the examples whose label is c, the fraction predicted as c "
        "(argmax of the logits); 0.0 for a class with no examples.",
    ),
    Question(
        id="02.5",
        function="sample_weights",
        points=1,
        title="weights for a balanced sampler",
        cases=cases_sample_weights,
        observe=normalised_weights,
        hint="each example weighs 1 / (number of examples of its class), so every class has the "
        "same total weight.",
    ),
    OpenQuestion(id="02.6", points=2, title="a score too good to be true"),
]
