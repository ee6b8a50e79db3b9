"""Chapter 09 (parameter-efficient fine-tuning): the LoRA forward pass, the merge, counting what
a LoRA configuration trains, and when LoRA is not enough.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/09_parameter_efficient.ipynb.

Introduced in exercises/09_parameter_efficient.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.questions import OpenQuestion, Question, same


def close(got: Any, expected: Any) -> str | None:
    """:func:`same` with a float tolerance: matrix products may be summed in another order."""
    return same(got, expected, rtol=1e-4, atol=1e-5)


def _draw(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high + 1, (1,), generator=gen))


def _lora_tensors(gen: torch.Generator, d_in: int, d_out: int, r: int) -> tuple:
    """``weight (out, in)``, ``A (r, in)``, ``B (out, r)`` (B non-zero, so the update counts)."""
    weight = torch.randn(d_out, d_in, generator=gen) / d_in**0.5
    A = torch.randn(r, d_in, generator=gen) / d_in**0.5
    B = torch.randn(d_out, r, generator=gen) * 0.5
    return weight, A, B


# ------------------------------------------------------------------- 09.1 the LoRA forward


def cases_forward(gen: torch.Generator) -> list[tuple]:
    """A 2-d and two 3-d inputs; ranks above 1 (the scale alpha / r matters); one layer without bias."""
    cases = []
    for lead, has_bias in (((4,), True), ((2, 3), False), ((3, 5), True)):
        d_in, d_out, r = _draw(gen, 5, 9), _draw(gen, 3, 8), _draw(gen, 2, 4)
        weight, A, B = _lora_tensors(gen, d_in, d_out, r)
        bias = torch.randn(d_out, generator=gen) if has_bias else None
        x = torch.randn(*lead, d_in, generator=gen)
        alpha = float(_draw(gen, 2, 32))
        cases.append((x, weight, bias, A, B, alpha))
    return cases


# ------------------------------------------------------------------------- 09.2 the merge


def cases_merge(gen: torch.Generator) -> list[tuple]:
    """Square and rectangular weights, ranks 1 to 4."""
    cases = []
    for r in (1, _draw(gen, 2, 3), 4):
        d_in, d_out = _draw(gen, 4, 9), _draw(gen, 3, 9)
        weight, A, B = _lora_tensors(gen, d_in, d_out, r)
        cases.append((weight, A, B, float(_draw(gen, 1, 32))))
    return cases


# --------------------------------------------------------------- 09.3 count a configuration


def encoder_like(gen: torch.Generator, blocks: int) -> nn.Module:
    """A random stack named like a transformer: ``blocks.<i>.{query,key,value,dense,my_query}``,
    an ``embed.value`` embedding (not linear), and a ``head`` of random size."""
    dim = _draw(gen, 4, 12)
    stack = nn.ModuleList()
    for _ in range(blocks):
        hidden = _draw(gen, dim, 3 * dim)
        stack.append(nn.ModuleDict({
            "query": nn.Linear(dim, dim), "key": nn.Linear(dim, dim, bias=False),
            "value": nn.Linear(dim, dim), "dense": nn.Linear(dim, hidden),
            "output": nn.ModuleDict({"dense": nn.Linear(hidden, dim)}), "my_query": nn.Linear(dim, dim),
        }))  # fmt: skip
    embed = nn.ModuleDict({"value": nn.Embedding(_draw(gen, 5, 20), dim)})
    return nn.ModuleDict(
        {"embed": embed, "blocks": stack, "head": nn.Linear(dim, _draw(gen, 2, 6))}
    )


def cases_count(gen: torch.Generator) -> list[tuple]:
    """Query/value, a suffix that matches two layers per block, and a dotted target."""
    targets = (["query", "value"], ["dense", "key"], ["output.dense"])
    return [(encoder_like(gen, _draw(gen, 1, 3)), t, _draw(gen, 1, 8)) for t in targets]


QUESTIONS = [
    Question(
        id="09.1",
        function="lora_forward",
        points=2,
        title="the LoRA forward pass",
        cases=cases_forward,
        compare=close,
        hint="the frozen layer's output x Wᵀ + b, plus the input passed through A then B, scaled by "
        "alpha divided by the rank (the number of rows of A); a missing bias is None.",
    ),
    Question(
        id="09.2",
        function="merge_weight",
        points=1,
        title="merge the update into the weight",
        cases=cases_merge,
        compare=close,
        hint="which (out, in) matrix does x Aᵀ Bᵀ multiply x by? Scale it like the forward pass.",
    ),
    Question(
        id="09.3",
        function="lora_trainable",
        points=2,
        title="count what a LoRA configuration trains",
        cases=cases_count,
        hint="a rank-r update of an (out, in) layer has r numbers per input and per output "
        "feature; match names exactly or by '.' + target at the end; only nn.Linear layers; "
        "add every parameter of the head.",
    ),
    OpenQuestion(id="09.4", points=2, title="when is LoRA not enough?"),
]
