"""Chapter 10 (compression): prune a conv layer's channels by hand, measure a speed-up that a
busy machine cannot fool, and choose a technique for a deployment.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/10_compression.ipynb.

Introduced in exercises/10_compression.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.cases import bn_tiny_cnn
from tlcourse.grading.data_observers import SlowStart
from tlcourse.grading.questions import OpenQuestion, Question, same

# ------------------------------------------------------------------ 10.1 prune by hand


def cases_prune(gen: torch.Generator) -> list[tuple]:
    """Tiny CNNs in eval mode (random width, classes and BatchNorm statistics) and a channel count."""
    cases = []
    for _ in range(3):
        width = int(torch.randint(3, 7, (1,), generator=gen))
        classes = int(torch.randint(2, 6, (1,), generator=gen))
        model = bn_tiny_cnn(gen, classes, width, affine=True)
        keep = int(torch.randint(1, 4 * width, (1,), generator=gen))
        cases.append((model, keep))
    return cases


def pruned_report(result: Any, args: tuple) -> dict[str, Any]:
    """The pruned layers' widths, the logits of the model as returned, and whether the model
    passed in was left untouched."""
    if not isinstance(result, nn.Module):
        return {"error": f"expected the pruned model (an nn.Module), got {type(result).__name__}"}
    original, keep = args
    width = original.backbone.block1[0].out_channels * 2
    try:
        conv, bn, head = result.backbone.block2[0], result.backbone.block2[1], result.head
        widths = (conv.out_channels, bn.num_features, head.in_features)
    except (AttributeError, IndexError, TypeError) as err:
        return {"error": f"the result is no tiny_cnn any more ({type(err).__name__})"}
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        try:
            logits: Any = result(x)
        except Exception as err:  # shapes that do not fit together
            logits = f"the pruned model failed on a batch ({type(err).__name__})"
    return {
        "block2 conv out_channels, BatchNorm features, head in_features": list(widths),
        "logits": logits,
        "model passed in unchanged": original.backbone.block2[0].out_channels == width
        and original.head.in_features == width
        and original.backbone.block2[1].running_mean.shape[0] == width,
    }


def logits_close(got: Any, expected: Any) -> str | None:
    """Like ``same``, with the tolerance of re-ordered float32 sums (1e-4)."""
    return same(got, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ 10.2 a trustworthy speed-up


class Timed(SlowStart):
    """A stand-in model that writes its name in a log shared with the other model at each call."""

    def __init__(self, name: str, log: list[str], ms_per_image: float) -> None:
        super().__init__(ms_per_image=ms_per_image, slow_calls=2, slow_s=0.3)
        self.name, self.log = name, log
        self.initial_training = True  # set by the case to the mode it hands over

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{self.name!r}, ms_per_image={self.ms_per_image:.6f}"


def cases_speedup(gen: torch.Generator) -> list[tuple]:
    """Two stand-ins sharing a log (one handed over in train mode), a true ratio drawn in [1.5, 3]."""
    cases = []
    for baseline_training in (True, False):
        fast = 1.0 + float(torch.rand(1, generator=gen))  # ms per image of the candidate
        ratio = 1.5 + 1.5 * float(torch.rand(1, generator=gen))
        log: list[str] = []
        baseline = Timed("baseline", log, fast * ratio).train(baseline_training)
        candidate = Timed("candidate", log, fast).eval()
        baseline.initial_training, candidate.initial_training = baseline_training, False
        size = int(torch.randint(16, 21, (1,), generator=gen))
        cases.append((baseline, candidate, torch.zeros(size, 4)))
    return cases


def speedup_report(result: Any, args: tuple) -> dict[str, Any]:
    """Whether the measurement was done right, not the exact ratio."""
    baseline, candidate, _ = args
    number = isinstance(result, int | float) and not isinstance(result, bool)
    truth = baseline.ms_per_image / candidate.ms_per_image
    timed = baseline.calls[baseline.slow_calls :] + candidate.calls[candidate.slow_calls :]
    switches = sum(a != b for a, b in zip(baseline.log, baseline.log[1:], strict=False))
    return {
        "returns a number": number,
        "speed-up within 25 % of the true one": number and 0.75 * truth <= result <= 1.25 * truth,
        "timed in eval mode": bool(timed) and not any(training for training, _ in timed),
        "timed without autograd": bool(timed) and not any(grad for _, grad in timed),
        "the two models alternated": switches >= 4,
        "models left in the mode they came in": baseline.training == baseline.initial_training
        and candidate.training == candidate.initial_training,
    }


QUESTIONS = [
    Question(
        id="10.1",
        function="prune_last_block",
        points=3,
        title="prune the last conv block by hand",
        cases=cases_prune,
        observe=pruned_report,
        compare=logits_close,
        hint="rank block2's conv filters by the sum of their absolute weights and keep the "
        "largest, in their original order; a removed channel disappears from the conv, from its "
        "BatchNorm (all four tensors) and from everything that reads it after the pooling; work "
        "on a copy, and mind the mode a new BatchNorm starts in.",
    ),
    Question(
        id="10.2",
        function="speedup",
        points=3,
        title="measure a speed-up a busy machine cannot fool",
        cases=cases_speedup,
        observe=speedup_report,
        hint="eval mode and torch.no_grad() for both, restored afterwards; a few untimed calls "
        "first; time many calls one by one, alternating the two models, and compare medians.",
    ),
    OpenQuestion(id="10.3", points=3, title="which technique for which deployment"),
]
