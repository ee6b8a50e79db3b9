"""Chapter 01 (what transfer learning is): freeze by depth within a budget, a closed-form probe,
few labels.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/01_what_is_transfer.ipynb.

Introduced in exercises/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import torch

from tlcourse.grading.cases import random_classifier
from tlcourse.grading.observers import trainable_flags
from tlcourse.grading.questions import OpenQuestion, Question

# ------------------------------------------------------------- 01.1 freeze within a budget


def cases_budget(gen: torch.Generator) -> list[tuple]:
    """Models that arrive with random flags and budgets as fractions of their size: all of it
    (nothing frozen), none (the head alone is over), and three in between."""
    cases = []
    for low, high in ((1.0, 1.0), (0.0, 0.0), (0.3, 0.7), (0.8, 0.92), (0.965, 0.995)):
        model = random_classifier(gen)
        total = sum(p.numel() for p in model.parameters())
        fraction = float(torch.empty(1).uniform_(low, high, generator=gen))
        cases.append((model, int(total * fraction)))
    return cases


def budget_report(result: object, args: tuple) -> dict:
    """The number of frozen blocks the function returned, and every parameter's flag after it."""
    return {"returned": result, "requires_grad": trainable_flags(result, args)}


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
        function="freeze_within_budget",
        points=2,
        title="freeze just enough blocks to fit a training budget",
        cases=cases_budget,
        observe=budget_report,
        hint="only backbone children with parameters count as blocks (the pooling block has none); "
        "the answer is the smallest k that fits, counted as the model will be after freezing, not "
        "from the flags it arrived with; when no k fits, every block freezes and the head trains.",
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
