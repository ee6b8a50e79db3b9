"""Chapter 01 (what transfer learning is): freeze by depth, a closed-form probe, few labels.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/01_what_is_transfer.ipynb.

Introduced in exercises/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import torch

from tlcourse.grading.cases import random_classifier
from tlcourse.grading.observers import trainable_flags
from tlcourse.grading.questions import OpenQuestion, Question

# -------------------------------------------------------------------- 01.1 freeze first k


def cases_freeze(gen: torch.Generator) -> list[tuple]:
    """k = 0, all blocks, and two in between, on models that arrive with random flags."""
    middle = [int(torch.randint(1, 3, (1,), generator=gen)) for _ in range(2)]
    return [(random_classifier(gen), k) for k in (0, 3, *middle)]


# ------------------------------------------------------------------ 01.3 prototype probe


def cases_probe(gen: torch.Generator) -> list[tuple]:
    """Clustered features; the last case has labels that skip a class number."""
    cases = []
    for n_per, num_classes, dim, skip in ((5, 3, 8, False), (1, 4, 16, False), (7, 3, 5, True)):
        centres = torch.randn(num_classes, dim, generator=gen) * 3
        labels = torch.arange(num_classes).repeat_interleave(n_per)
        test_labels = torch.randint(0, num_classes, (20,), generator=gen)
        train = centres[labels] + torch.randn(len(labels), dim, generator=gen)
        test = centres[test_labels] + torch.randn(20, dim, generator=gen) * 1.5
        cases.append((train, labels * 2 if skip else labels, test))
    return cases


# --------------------------------------------------------------- 01.2 trainable by depth


def cases_depth(gen: torch.Generator) -> list[tuple]:
    return [(random_classifier(gen),) for _ in range(3)]


# --------------------------------------------------------------- 01.4 first k per class


def cases_first_k(gen: torch.Generator) -> list[tuple]:
    cases = []
    for n, num_classes, k in ((30, 3, 2), (50, 5, 1), (40, 4, 6)):
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=gen)]
        cases.append((labels, k))
    return cases


QUESTIONS = [
    Question(
        id="01.1",
        function="freeze_first_k",
        points=2,
        title="freeze exactly the first k blocks",
        cases=cases_freeze,
        observe=trainable_flags,
        hint="count only backbone children that have parameters (the pooling block has none); "
        "make everything trainable first, then freeze the first k of them.",
    ),
    Question(
        id="01.2",
        function="trainable_by_depth",
        points=2,
        title="what trains at each freezing depth",
        cases=cases_depth,
        hint="one number per k = 0 .. number of blocks with parameters: all parameters of the "
        "model minus those of the first k blocks (the model may arrive partly frozen; count "
        "what would train after freezing exactly the first k).",
    ),
    Question(
        id="01.3",
        function="prototype_probe",
        points=2,
        title="a closed-form probe on cached features",
        cases=cases_probe,
        hint="average the features of each class that occurs in train_labels, then give every test "
        "row the label of the nearest mean (Euclidean distance, e.g. torch.cdist) — the label "
        "itself, not its position; return an int64 tensor.",
    ),
    Question(
        id="01.4",
        function="first_k_per_class",
        points=1,
        title="k labelled examples per class",
        cases=cases_first_k,
        hint="for every class, the indices of its first k occurrences; concatenate them and sort; "
        "return an int64 tensor.",
    ),
    OpenQuestion(id="01.5", points=3, title="choose a strategy and defend it"),
]
