"""Chapter 02 (preparing data): matched preprocessing, class weights, a leak-free split,
per-class recall, balanced sampling weights.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/02_preparing_data.ipynb.

Introduced in exercises/02_preparing_data.ipynb.
"""

from __future__ import annotations

import types

import torch

from tlcourse.grading.data_observers import (
    applied,
    as_float32,
    normalised_weights,
    split_properties,
)
from tlcourse.grading.questions import OpenQuestion, Question


def _int(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


# ------------------------------------------------------------- 02.1 preprocessing for a backbone


def cases_entry(gen: torch.Generator) -> list[tuple]:
    """Backbone descriptions with random statistics and input sizes."""
    cases = []
    for _ in range(3):
        mean = [round(v, 3) for v in (torch.rand(3, generator=gen) * 0.6 + 0.2).tolist()]
        std = [round(v, 3) for v in (torch.rand(3, generator=gen) * 0.25 + 0.1).tolist()]
        size = _int(gen, 8, 33)
        cases.append(
            (
                types.SimpleNamespace(
                    name="candidate", mean=mean, std=std, input_size=(3, size, size)
                ),
            )
        )
    return cases


# ------------------------------------------------------------------------ 02.2 class weights


def cases_targets(gen: torch.Generator) -> list[tuple]:
    """Imbalanced label vectors in which every class occurs."""
    cases = []
    for num_classes in (2, 5, 9):
        counts = torch.randint(1, 30, (num_classes,), generator=gen)
        targets = torch.repeat_interleave(torch.arange(num_classes), counts)
        cases.append((targets[torch.randperm(len(targets), generator=gen)], num_classes))
    return cases


# ---------------------------------------------------------------------- 02.3 leak-free split


def cases_groups(gen: torch.Generator) -> list[tuple]:
    """Group ids (originals with 1-5 copies each), shuffled, and a test fraction."""
    cases = []
    for n_groups, fraction in ((40, 0.2), (25, 0.3), (60, 0.25)):
        sizes = torch.randint(1, 6, (n_groups,), generator=gen)
        groups = torch.repeat_interleave(torch.arange(n_groups), sizes)
        groups = groups[torch.randperm(len(groups), generator=gen)].numpy()
        cases.append((groups, fraction, _int(gen, 0, 1000)))
    return cases


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
        function="preprocessing_for",
        points=2,
        title="preprocessing that matches a backbone",
        cases=cases_entry,
        observe=applied,
        hint="scale uint8 to [0, 1] first (v2.ToDtype(torch.float32, scale=True)), then "
        "v2.Normalize with the entry's own mean and std; the result must be float32.",
    ),
    Question(
        id="02.2",
        function="class_weights",
        points=1,
        title="balanced class weights",
        cases=cases_targets,
        observe=as_float32,
        hint="weight of class c = number of examples / (num_classes * count of c); torch.bincount counts.",
    ),
    Question(
        id="02.3",
        function="group_split",
        points=2,
        title="a split without leaks",
        cases=cases_groups,
        observe=split_properties,
        hint="split the *originals* (unique group ids), not the rows; sklearn's GroupShuffleSplit "
        "does exactly this.",
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
