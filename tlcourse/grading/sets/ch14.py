"""Chapter 14 (capstone): choose a backbone on validation under a size budget, turn logits into
the rows of a predictions file, and report what was chosen and why.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/14_capstone.ipynb.

Introduced in exercises/14_capstone.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch

from tlcourse.grading.questions import OpenQuestion, Question

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _name(gen: torch.Generator, length: int = 5) -> str:
    return "".join(_LETTERS[int(i)] for i in torch.randint(0, 26, (length,), generator=gen))


# ------------------------------------------------------------------ 14.1 pick a backbone


def cases_pick(gen: torch.Generator) -> list[tuple]:
    """Candidates with accuracies on a 1/40 grid (so exact ties happen), sizes in MB, a budget
    that at least one candidate fits; the last case has a tie within the budget."""
    cases = []
    for tie in (False, False, True):
        n = int(torch.randint(4, 8, (1,), generator=gen))
        names = [f"{_name(gen)}-{k}" for k in range(n)]
        accuracy = [int(k) / 40 for k in torch.randint(20, 40, (n,), generator=gen)]
        size = [round(float(s), 2) for s in torch.rand(n, generator=gen) * 9 + 0.5]
        order = torch.argsort(torch.tensor(size)).tolist()
        # the budget admits the smaller half (at least three candidates)
        budget = size[order[n // 2]]  # exactly one size: within means <=
        if tie:  # the largest and the smallest that fit share the top accuracy
            fits = order[: n // 2 + 1]
            top = max(accuracy[i] for i in fits)
            accuracy[fits[0]] = accuracy[fits[-1]] = top
        perm = torch.randperm(n, generator=gen).tolist()
        cases.append(
            (
                {names[i]: accuracy[i] for i in perm},
                {names[i]: size[i] for i in perm},
                budget,
            )
        )
    return cases


# ------------------------------------------------------------------ 14.2 prediction rows


def cases_rows(gen: torch.Generator) -> list[tuple]:
    """Shuffled ids, random logits, class names (not sorted, so an index is not a name)."""
    cases = []
    for _ in range(3):
        n = int(torch.randint(3, 12, (1,), generator=gen))
        c = int(torch.randint(2, 7, (1,), generator=gen))
        ids = [f"t{int(i):04d}" for i in torch.randperm(1000, generator=gen)[:n]]
        classes = [f"{_name(gen, 4)}{k}" for k in range(c)]
        cases.append((ids, torch.randn(n, c, generator=gen) * 3, classes))
    return cases


def pairs(result: Any, args: tuple) -> Any:
    """The rows as ``[[id, label], ...]`` when every row is a pair of Python strings."""
    if not isinstance(result, list):
        return {"error": f"expected a list of (id, label) tuples, got {type(result).__name__}"}
    rows = []
    for row in result:
        if not (isinstance(row, tuple) and len(row) == 2 and all(type(v) is str for v in row)):
            return {"error": f"expected each row to be a tuple of two str, got {row!r}"}
        rows.append(list(row))
    return rows


QUESTIONS = [
    Question(
        id="14.1",
        function="pick_backbone",
        points=2,
        title="pick a backbone on validation under the size budget",
        cases=cases_pick,
        hint="keep only the candidates whose size is within the budget (<=); among them take the "
        "highest validation accuracy, and on equal accuracy the smaller model.",
    ),
    Question(
        id="14.2",
        function="prediction_rows",
        points=2,
        title="logits to the rows of predictions.csv",
        cases=cases_rows,
        observe=pairs,
        hint="row i of the logits belongs to ids[i]; its label is the class name at the index of "
        "the largest logit; return Python str, not tensors.",
    ),
    OpenQuestion(id="14.3", points=4, title="the report"),
]
