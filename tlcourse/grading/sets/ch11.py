"""Chapter 11 (distributed training): shard a dataset across ranks by hand, average gradients
with an all-reduce, plan the per-device batch and accumulation for a memory limit.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/11_distributed_training.ipynb. Gradient averaging is graded
against :class:`SimulatedAllReduce`, which plays the other ranks inside one process (the real
two-process run is in the exercise notebook, through ``torchrun``).

Introduced in exercises/11_distributed_training.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.grading.questions import OpenQuestion, Question

# ------------------------------------------------------------------- 11.1 shard by hand


def cases_shard(gen: torch.Generator) -> list[tuple]:
    """(order, rank, world_size): uneven sizes, a dataset smaller than the world, an even one."""
    cases = []
    for n, world in ((int(torch.randint(7, 30, (1,), generator=gen)), 4), (2, 5), (12, 3)):
        order = torch.randperm(n, generator=gen).tolist()
        cases.append((order, int(torch.randint(0, world, (1,), generator=gen)), world))
    return cases


# ------------------------------------------------------------- 11.2 average gradients


class SimulatedAllReduce:
    """``all_reduce(tensor)`` for one rank of a simulated group: adds, in place, what the other
    ranks hold for the same parameter (their gradients are drawn in advance), like
    ``torch.distributed.all_reduce`` with ``op=SUM`` would. Accepts only parameters' ``.grad``."""

    def __init__(self, model: nn.Module, others: dict[str, torch.Tensor]) -> None:
        self.model, self.others = model, others

    def __call__(self, tensor: torch.Tensor, op=None, group=None, async_op: bool = False):
        for name, p in self.model.named_parameters():
            if p.grad is not None and p.grad.data_ptr() == tensor.data_ptr():
                tensor.add_(self.others[name])
                return None
        raise ValueError(
            "all_reduce got a tensor that is no parameter's .grad: reduce each p.grad in place."
        )


def cases_average(gen: torch.Generator) -> list[tuple]:
    """(model with this rank's gradients, a simulated all_reduce, world_size); one frozen layer."""
    cases = []
    for world in (2, 3, 4):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        model[0].requires_grad_(False)
        others = {}
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.grad = torch.randn(p.shape, generator=gen)
                others[name] = torch.randn((world - 1, *p.shape), generator=gen).sum(0)
        cases.append((model, SimulatedAllReduce(model, others), world))
    return cases


def gradients(result: object, args: tuple) -> dict:
    """Observer: every parameter's gradient after the call (``None`` where there is none)."""
    return {name: p.grad for name, p in args[0].named_parameters()}


# -------------------------------------------------------------- 11.3 plan accumulation


def cases_plan(gen: torch.Generator) -> list[tuple]:
    """(global_batch, world_size, max_per_device) with world_size dividing global_batch."""
    cases = []
    for world in (1, 4, 8):
        global_batch = world * int(2 ** torch.randint(3, 8, (1,), generator=gen))
        cases.append((global_batch, world, int(torch.randint(3, 40, (1,), generator=gen))))
    return cases


QUESTIONS = [
    Question(
        id="11.1",
        function="shard",
        points=2,
        title="shard a dataset across ranks by hand",
        cases=cases_shard,
        hint="first repeat the order from its start until its length is a multiple of "
        "world_size, then this rank takes every world_size-th item, starting at its rank; "
        "return a list of int.",
    ),
    Question(
        id="11.2",
        function="average_gradients",
        points=3,
        title="average gradients over ranks with all_reduce",
        cases=cases_average,
        observe=gradients,
        hint="all_reduce sums a tensor over ranks in place: reduce each parameter's .grad "
        "(skip parameters without one), then divide it by the number of ranks.",
    ),
    Question(
        id="11.3",
        function="plan_accumulation",
        points=2,
        title="per-device batch and accumulation steps for a memory limit",
        cases=cases_plan,
        hint="try accumulation steps k = 1, 2, 3, ...: keep the first k for which "
        "world_size * k divides the global batch and the per-device batch fits the limit.",
    ),
    OpenQuestion(id="11.4", points=3, title="choose the batch plan for a memory limit"),
]
