"""Chapter 04 (image fine-tuning in PyTorch): partial freezing, the two-stage fine-tune, where
a range test stops, a learning rate from the longest valley of its curve, and the most confident
mistakes.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/04_image_finetuning.ipynb.

Introduced in exercises/04_image_finetuning.ipynb.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from tlcourse.grading.observers import trainable_flags
from tlcourse.grading.questions import OpenQuestion, Question, same
from tlcourse.lr_finder import smooth_losses
from tlcourse.nets import Classifier, conv_block


def _model(gen: torch.Generator) -> Classifier:
    """A tiny Classifier with 2-4 conv blocks (+ a parameter-free pool) and random flags."""
    depth = int(torch.randint(2, 5, (1,), generator=gen))
    width = int(torch.randint(1, 3, (1,), generator=gen)) * 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        layers: OrderedDict[str, nn.Module] = OrderedDict(stem=conv_block(3, width))
        for i in range(1, depth):
            layers[f"block{i}"] = conv_block(width, width)
        layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        model = Classifier(
            nn.Sequential(layers), nn.Linear(width, int(torch.randint(2, 9, (1,), generator=gen)))
        )
    for p in model.parameters():
        p.requires_grad_(bool(torch.rand(1, generator=gen) < 0.5))
    return model


def cases_model(gen: torch.Generator) -> list[tuple]:
    return [(_model(gen),) for _ in range(3)]


# ------------------------------------------------------------- 04.1 train only the last block


# ------------------------------------------------------------ 04.2 the two-stage fine-tune

START = "_state_at_start"  # attribute of a case's model: its state before the call


def cases_two_stage(gen: torch.Generator) -> list[tuple]:
    """Tiny models (random flags), three batches of random images, and the stage lengths:
    the head stage alone, the second stage alone, both."""
    cases = []
    for head_epochs, epochs in ((1, 0), (0, 1), (2, 1)):
        model = _model(gen)
        x = torch.randn(24, 3, 8, 8, generator=gen)
        y = torch.randint(0, model.head.out_features, (24,), generator=gen)
        batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 24, 8)]
        lr = float(10 ** float(torch.empty(1).uniform_(-3.0, -2.0, generator=gen)))
        factor = float(torch.empty(1).uniform_(0.05, 0.3, generator=gen))
        setattr(model, START, {k: v.clone() for k, v in model.state_dict().items()})
        cases.append((model, batches, head_epochs, epochs, lr, factor))
    return cases


def two_stage_report(result: object, args: tuple) -> dict:
    """What the call did to the model: which parts moved, how far (in units of lr), and
    whether the BatchNorm statistics changed."""
    model, lr = args[0], args[4]
    before, after = getattr(model, START), model.state_dict()

    def largest(part: str) -> float:
        changes = [
            float((after[k] - v).abs().max())
            for k, v in before.items()
            if k.startswith(part) and v.is_floating_point() and "running" not in k
        ]
        return round(max(changes) / lr, 3)

    running = [k for k in before if "running" in k]
    return {
        "returns the model": result is model,
        "every parameter trainable at the end": all(p.requires_grad for p in model.parameters()),
        "head changed": largest("head.") > 0,
        "backbone weights changed": largest("backbone.") > 0,
        "BatchNorm statistics changed": any(not torch.equal(before[k], after[k]) for k in running),
        "largest head change / lr": largest("head."),
        "largest backbone change / lr": largest("backbone."),
    }


def about_the_same(got: object, expected: object) -> str | None:
    """Flags exactly; the sizes of the changes within 10 % (sums may run in another order)."""
    return same(got, expected, rtol=0.1, atol=0.02)


# -------------------------------------------------------------- 04.3 where a range test stops


def cases_divergence(gen: torch.Generator) -> list[tuple]:
    """Noisy range-test curves run to the end: one that blows up, one cut before it would (no
    stop), one with a NaN loss; the smoothing and the divergence factor vary."""
    cases = []
    for kind, beta, diverge in (("blows up", 0.9, 2.0), ("never", 0.8, 4.0), ("nan", 0.98, 5.0)):
        lrs, losses = _curve(gen)
        raw = (np.asarray(losses) + 0.05 * torch.randn(len(lrs), generator=gen).numpy()).tolist()
        if kind == "never":  # stop where the loss is still near its lowest
            end = int(np.argmin(losses)) + 1
            lrs, raw = lrs[:end], raw[:end]
        if kind == "nan":
            raw[int(torch.randint(5, 25, (1,), generator=gen))] = float("nan")
        cases.append((lrs, raw, beta, diverge))
    return cases


# ------------------------------------------------------- 04.4 the longest valley of a curve


def _curve(gen: torch.Generator) -> tuple[list[float], list[float]]:
    """A range-test-like curve: flat, a drop centred at a random rate, then a blow-up."""
    lrs = np.geomspace(1e-6, 1.0, 61)
    centre = float(torch.empty(1).uniform_(-4.5, -2.0, generator=gen))
    width = float(torch.empty(1).uniform_(1.5, 4.0, generator=gen))
    x = np.log10(lrs)
    losses = 2.5 - 1.8 / (1 + np.exp(-(x - centre) * width))
    losses += np.where(x > centre + 1.5, 4.0 * (x - centre - 1.5) ** 2, 0.0)
    return lrs.tolist(), losses.tolist()


def _two_valleys(gen: torch.Generator) -> tuple[list[float], list[float]]:
    """Two valleys of the same length with a bump between them, then a blow-up: the rule's
    tie-break (the first valley) decides the answer."""
    steps = int(torch.randint(3, 7, (1,), generator=gen))
    first = np.linspace(2.5, 1.5, steps + 1)
    second = np.linspace(1.8, 0.8, steps + 1)
    losses = [*first, 1.6, *second, 3.0, 5.0]
    start = float(torch.empty(1).uniform_(-6.0, -4.0, generator=gen))
    return np.logspace(start, start + 0.1 * (len(losses) - 1), len(losses)).tolist(), losses


def cases_curve(gen: torch.Generator) -> list[tuple]:
    """Curves as ``lr_range_test`` returns them (noisy raw losses, more or less noise, smoothed),
    and one curve whose two longest valleys tie."""
    cases = []
    for noise in (0.03, 0.05, 0.08):
        lrs, losses = _curve(gen)
        raw = np.asarray(losses) + noise * torch.randn(len(lrs), generator=gen).numpy()
        cases.append((lrs, smooth_losses(raw.tolist(), 0.9)))
    cases.append(_two_valleys(gen))
    return cases


# ---------------------------------------------------------------- 04.5 confident mistakes


def cases_mistakes(gen: torch.Generator) -> list[tuple]:
    cases = []
    for n, c, k in ((20, 3, 4), (50, 5, 10), (12, 4, 30)):
        logits = torch.randn(n, c, generator=gen) * 2
        cases.append((logits, torch.randint(0, c, (n,), generator=gen), k))
    return cases


QUESTIONS = [
    Question(
        id="04.1",
        function="freeze_all_but_last_block",
        points=2,
        title="partial fine-tuning: only the last block and the head train",
        cases=cases_model,
        observe=trainable_flags,
        hint="the last child of model.backbone may hold no parameters (a pooling layer): take the "
        "last block that has parameters; parameters may arrive frozen or trainable.",
    ),
    Question(
        id="04.2",
        function="two_stage_fine_tune",
        points=3,
        title="the two-stage fine-tune, written by you",
        cases=cases_two_stage,
        observe=two_stage_report,
        compare=about_the_same,
        hint="stage 1 protects the pretrained backbone from a random head: nothing in it may change, "
        "its BatchNorm statistics included; stage 2 moves everything, the pretrained part more gently "
        "(one optimizer, two parameter groups); each stage starts a new optimizer.",
    ),
    Question(
        id="04.3",
        function="divergence_lr",
        points=1,
        title="where would the range test have stopped?",
        cases=cases_divergence,
        hint="'explodes' is measured against the best the test had seen *so far*, not the lowest loss "
        "of the whole curve (that one lies in the future); a NaN or inf loss has exploded too.",
    ),
    Question(
        id="04.4",
        function="valley_lr",
        points=2,
        title="a learning rate from the longest valley of a range-test curve",
        cases=cases_curve,
        hint="a valley is a stretch of consecutive points where every step lowers the loss; a "
        "single step up ends it; among the longest, the first; its middle point rounds down; "
        "return the rate there as a float.",
    ),
    Question(
        id="04.5",
        function="confident_mistakes",
        points=2,
        title="the most confidently wrong predictions",
        cases=cases_mistakes,
        hint="softmax the logits; keep rows whose argmax is not the target; sort them by the "
        "probability of the predicted class, highest first; at most k indices, as a list of int.",
    ),
    OpenQuestion(id="04.6", points=2, title="a frozen backbone that still changes"),
]
