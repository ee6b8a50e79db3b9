"""Chapter 03 (choosing a pretrained model): a new probe on cached features, a choice made on
validation with the test split touched once, a 2-D projection.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/03_choosing_a_model.ipynb.

Introduced in exercises/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch

from tlcourse.grading.data_observers import distances
from tlcourse.grading.questions import OpenQuestion, Question, same

# ------------------------------------------------------- 03.1 a nearest-centroid probe on features


def _cluster_draw(gen: torch.Generator, centres: torch.Tensor, scale: torch.Tensor, n: int):
    """``n`` points per class around ``centres (K, D)``, each class stretched by ``scale (K, 1)``."""
    labels = torch.arange(len(centres)).repeat_interleave(n)
    labels = labels[torch.randperm(len(labels), generator=gen)]
    noise = 1.2 * torch.randn(len(labels), centres.shape[1], generator=gen)
    return scale[labels] * (centres[labels] + noise), labels


def cases_centroid(gen: torch.Generator) -> list[tuple]:
    """Cached features of a few classes (train and validation), clusters of unequal norm and
    spread, so that an answer that skips a step (no normalising, no class means) differs."""
    cases = []
    for classes, per_class, dim in ((3, 6, 5), (4, 5, 8), (5, 4, 6)):
        centres = torch.randn(classes, dim, generator=gen) * 2.0
        scale = 0.5 + 3.0 * torch.rand(classes, 1, generator=gen)
        train = _cluster_draw(gen, centres, scale, per_class)
        cases.append((*train, *_cluster_draw(gen, centres, scale, per_class + 2)))
    return cases


# ------------------------------------------------ 03.2 choose on validation, then test once


class TestSplit:
    """Stands in for "score this backbone on the test split": returns a fixed accuracy per
    name and records every call, so the grader sees whether the test split was touched once."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = dict(scores)
        self.calls: list[str] = []

    def __call__(self, name: str) -> float:
        self.calls.append(str(name))
        return self.scores[name]


def cases_choose(gen: torch.Generator) -> list[tuple]:
    """Comparison tables in which the most accurate row, the cheapest row and the cheapest row
    within the tolerance are three different rows; the latency budget is loose, tight (it
    removes the most accurate row) or impossible."""
    cases = []
    for budget in ("loose", "tight", "impossible", "loose"):
        n = int(torch.randint(4, 7, (1,), generator=gen))
        accs = (torch.randint(60, 90, (n,), generator=gen) / 100).tolist()
        params = torch.randperm(60, generator=gen)[:n].add(3).float().tolist()
        ms = torch.randperm(80, generator=gen)[:n].add(10).float().tolist()
        best, close_cheap, cheapest = torch.randperm(n, generator=gen)[:3].tolist()
        accs[best] = 0.95
        accs[close_cheap], params[close_cheap] = 0.94, 2.0
        accs[cheapest], params[cheapest] = 0.55, 1.0
        if budget == "tight":
            ms[best] = 200.0
            ms[close_cheap] = 150.0  # also too slow: the rule falls back to the others
        max_ms = {"loose": 1000.0, "tight": 100.0, "impossible": 1.0}[budget]
        rows = [
            {"name": f"net{i}", "val_accuracy": accs[i], "params": params[i], "ms": ms[i]}
            for i in range(n)
        ]
        test = TestSplit({r["name"]: float(torch.rand(1, generator=gen)) for r in rows})
        cases.append((rows, 0.02, max_ms, test))
    return cases


def protocol_report(result: Any, args: tuple) -> dict[str, Any]:
    """What was returned, and which backbones the test split was scored for (in order)."""
    got = list(result) if isinstance(result, tuple | list) else result
    return {"returned": got, "test split scored for": list(args[3].calls)}


# ------------------------------------------------------------------------ 03.3 PCA to 2-D


def cases_pca(gen: torch.Generator) -> list[tuple]:
    """Features with clearly separated variances per direction (a well-defined top-2 plane)."""
    cases = []
    for n, d in ((20, 5), (50, 8), (12, 3)):
        scales = torch.tensor([6.0, 3.0] + [0.5] * (d - 2))
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
        cases.append(
            (
                (torch.randn(n, d, generator=gen) * scales) @ rotation
                + torch.randn(d, generator=gen),
            )
        )
    return cases


def close(got: Any, expected: Any) -> str | None:
    return same(got, expected, rtol=1e-3, atol=1e-3)


QUESTIONS = [
    Question(
        id="03.1",
        function="nearest_centroid_accuracy",
        points=2,
        title="a nearest-centroid probe on cached features",
        cases=cases_centroid,
        compare=close,
        hint="A probe asks how well frozen features already separate the classes. Here each class "
        "is summarised by one direction in feature space, learnt from the training features only; "
        "a validation example belongs to the class whose direction is closest in angle.",
    ),
    Question(
        id="03.2",
        function="choose_then_test",
        points=2,
        title="choose on validation, touch the test split once",
        cases=cases_choose,
        observe=protocol_report,
        compare=close,
        hint="Decide with validation numbers only, by the chapter's rule (fast enough first, then "
        "the cheapest among those close enough to the best); the test split only reports the one "
        "choice you made.",
    ),
    Question(
        id="03.3",
        function="pca_2d",
        points=1,
        title="project features to 2-D",
        cases=cases_pca,
        observe=distances,
        compare=close,
        hint="Centre the features (no scaling), then keep the two directions along which they vary "
        "most.",
    ),
    OpenQuestion(id="03.4", points=2, title="read a model card and a licence"),
]
