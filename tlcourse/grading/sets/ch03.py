"""Chapter 03 (choosing a pretrained model): latency measured correctly, features extracted
correctly, a choice under a latency budget, a 2-D projection.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/03_choosing_a_model.ipynb.

Introduced in exercises/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.data_observers import SlowStart, distances, features_report, latency_report
from tlcourse.grading.questions import OpenQuestion, Question, same

# ------------------------------------------------------------------- 03.1 latency, measured well


def cases_latency(gen: torch.Generator) -> list[tuple]:
    size = int(torch.randint(4, 12, (1,), generator=gen))
    return [(SlowStart(4.0).train(), (3, size, size)), (SlowStart(6.0).eval(), (3, size, size))]


def cases_latency_remembered(gen: torch.Generator) -> list[tuple]:
    """:func:`cases_latency`, each model noting the mode it arrived in."""
    cases = cases_latency(gen)
    for model, _ in cases:
        model.initial_training = model.training
    return cases


# ---------------------------------------------------------------------- 03.2 extract features


def cases_features(gen: torch.Generator) -> list[tuple]:
    """Backbones with BatchNorm and Dropout (so train mode changes the output), in train mode."""
    cases = []
    for n, batch in ((10, 4), (7, 7), (9, 2)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            backbone = nn.Sequential(
                nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5)
            )
            backbone[2].running_mean.normal_()
            backbone[2].running_var.uniform_(0.5, 2.0)
        cases.append((backbone.train(), torch.randn(n, 3, 2, 2, generator=gen), batch))
    return cases


# ---------------------------------------------------------------------- 03.3 pick a backbone


def cases_pick(gen: torch.Generator) -> list[tuple]:
    """Tables of candidates; one with a tie in accuracy, one where nothing is fast enough."""
    cases = []
    for k in range(3):
        n = int(torch.randint(3, 7, (1,), generator=gen))
        accs = (torch.randint(50, 95, (n,), generator=gen) / 100).tolist()
        if k == 1:
            accs[1] = accs[0] = max(accs)
        rows = [
            {
                "name": f"net{i}",
                "accuracy": accs[i],
                "params": float(torch.randint(1, 60, (1,), generator=gen)),
                "ms": float(torch.randint(2, 80, (1,), generator=gen)),
            }
            for i in range(n)
        ]
        max_ms = 1.0 if k == 2 else float(sorted(r["ms"] for r in rows)[n // 2])
        cases.append((rows, max_ms))
    return cases


# ------------------------------------------------------------------------ 03.4 PCA to 2-D


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
        function="measure_latency",
        points=2,
        title="measure latency correctly",
        cases=cases_latency_remembered,
        observe=latency_report,
        hint="eval mode, torch.inference_mode() (or no_grad), a few untimed warm-up calls, then the "
        "median of several timed calls in milliseconds per image; restore the model's mode at the end.",
    ),
    Question(
        id="03.2",
        function="extract_features",
        points=2,
        title="extract features the right way",
        cases=cases_features,
        observe=features_report,
        hint="backbone.eval() (BatchNorm uses its running statistics, Dropout is off), torch.no_grad(), "
        "batches in order, torch.cat; put the backbone back in the mode it came in.",
    ),
    Question(
        id="03.3",
        function="pick_backbone",
        points=1,
        title="a choice under a latency budget",
        cases=cases_pick,
        hint="keep rows with ms <= max_ms; the highest accuracy wins, ties go to fewer params; "
        "None if no row is fast enough.",
    ),
    Question(
        id="03.4",
        function="pca_2d",
        points=1,
        title="project features to 2-D",
        cases=cases_pca,
        observe=distances,
        compare=close,
        hint="centre the features (subtract the column means, no scaling), then project on the two "
        "leading right-singular vectors (torch.linalg.svd) or use sklearn's PCA(2).",
    ),
    OpenQuestion(id="03.5", points=2, title="read a model card and a licence"),
]
