"""Chapter 08 (fusion and distillation): the distillation loss, a weighted soup, a vote counter.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/08_fusion_and_distillation.ipynb.

Introduced in exercises/08_fusion_and_distillation.ipynb.
"""

from __future__ import annotations

import torch

from tlcourse.grading.questions import OpenQuestion, Question

# ------------------------------------------------------------------ 08.1 soft-target loss


def cases_soft_targets(gen: torch.Generator) -> list[tuple]:
    """Student and teacher logits ``(N, C)`` at three temperatures (one near 1, two above)."""
    cases = []
    for n, c in ((6, 4), (9, 10), (5, 3)):
        temperature = float(1 + 7 * torch.rand((), generator=gen))
        student = 3 * torch.randn(n, c, generator=gen)
        teacher = 3 * torch.randn(n, c, generator=gen)
        cases.append((student, teacher, round(temperature, 2)))
    return cases


# --------------------------------------------------------------------- 08.2 weighted soup


def _state(gen: torch.Generator, counter: int) -> dict[str, torch.Tensor]:
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=gen),
        "bn.running_mean": torch.randn(4, generator=gen),
        "bn.num_batches_tracked": torch.tensor(counter),
        "head.weight": torch.randn(5, 4, generator=gen),
    }


def cases_soup(gen: torch.Generator) -> list[tuple]:
    """Two to four ingredients with different counters; weights that do not sum to 1."""
    cases = []
    for m in (2, 3, 4):
        counters = torch.randint(1, 500, (m,), generator=gen).tolist()
        states = [_state(gen, k) for k in counters]
        weights = (torch.rand(m, generator=gen) * 3 + 0.1).tolist()
        cases.append((states, weights))
    return cases


# ---------------------------------------------------------------------- 08.3 vote counter


def cases_votes(gen: torch.Generator) -> list[tuple]:
    """Predictions ``(M, N)`` of M members, with ties when M is even."""
    cases = []
    for m, n, c in ((3, 12, 4), (4, 20, 3), (2, 15, 5)):
        cases.append((torch.randint(0, c, (m, n), generator=gen), c))
    return cases


QUESTIONS = [
    Question(
        id="08.1",
        function="soft_target_loss",
        points=2,
        title="the distillation loss, per example",
        cases=cases_soft_targets,
        hint="soften both distributions with the same temperature; KL(p ‖ q) sums p · (log p − "
        "log q) over the classes, with p the teacher's; keep one value per example and scale by T².",
    ),
    Question(
        id="08.2",
        function="weighted_soup",
        points=2,
        title="a weighted soup",
        cases=cases_soup,
        hint="normalise the weights to sum to 1; average only floating-point tensors; integer "
        "counters are copied from the first ingredient, not averaged.",
    ),
    Question(
        id="08.3",
        function="plurality_vote",
        points=2,
        title="count the votes",
        cases=cases_votes,
        hint="count, for each example, how many members chose each class (a one-hot sum over "
        "members); argmax returns the first maximum, the smallest tied class.",
    ),
    OpenQuestion(id="08.4", points=3, title="ensemble, soup or distillation?"),
]
