"""Chapter 00 (welcome) warm-up: parameters, freezing, heads, normalisation, accuracy.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/00_warmup.ipynb.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.grading.cases import random_classifier
from tlcourse.grading.observers import image_classifier_report, trainable_flags
from tlcourse.grading.questions import OpenQuestion, Question

# ----------------------------------------------------------------------- 00.1 count trainable


def cases_model(gen: torch.Generator) -> list[tuple]:
    """Three tiny models: random flags, head frozen + backbone trainable, all trainable."""
    head_frozen, all_trainable = (
        random_classifier(gen, p_trainable=0.6),
        random_classifier(gen, p_trainable=0.6),
    )
    head_frozen.requires_grad_(True)
    head_frozen.head.requires_grad_(False)
    all_trainable.requires_grad_(True)
    return [(random_classifier(gen, p_trainable=0.6),), (head_frozen,), (all_trainable,)]


# ------------------------------------------------------------------------ 00.2 freeze backbone


# --------------------------------------------------------------------------- 00.3 swap head


def cases_swap(gen: torch.Generator) -> list[tuple]:
    """Models whose old head is gone (``nn.Identity``, a feature extractor), was replaced by a
    two-layer MLP for another task, or is a plain ``nn.Linear``; a new class count for each."""
    cases = []
    for kind in ("removed", "mlp", "linear"):
        model = random_classifier(gen, p_trainable=0.6)
        features = model.head.in_features
        hidden = features + int(torch.randint(1, 9, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            if kind == "removed":
                model.head = nn.Identity()
            elif kind == "mlp":
                old = model.head.out_features
                model.head = nn.Sequential(
                    nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, old)
                )
        cases.append((model, int(torch.randint(2, 40, (1,), generator=gen))))
    return cases


# ------------------------------------------------------------------------- 00.4 normalise


def cases_normalize(gen: torch.Generator) -> list[tuple]:
    cases = []
    for channels in (3, 1, 3):
        images = torch.rand(4, channels, 5, 6, generator=gen)
        mean = (torch.rand(channels, generator=gen) * 0.5 + 0.25).tolist()
        std = (torch.rand(channels, generator=gen) * 0.3 + 0.1).tolist()
        cases.append((images, mean, std))
    return cases


# -------------------------------------------------------------------------- 00.5 accuracy


UNLABELLED = -100  # PyTorch's ignore_index: a row that carries no label


def cases_accuracy(gen: torch.Generator) -> list[tuple]:
    """Logits and labels where some rows are unlabelled (about 30 %, none, about half)."""
    cases = []
    for n, c, p_unlabelled in ((12, 3, 0.3), (37, 5, 0.0), (16, 2, 0.5)):
        logits = torch.randn(n, c, generator=gen)
        labels = torch.randint(0, c, (n,), generator=gen)
        unlabelled = torch.rand(n, generator=gen) < p_unlabelled
        unlabelled[int(torch.randint(0, n, (1,), generator=gen))] = False  # one row keeps its label
        cases.append((logits, labels.masked_fill(unlabelled, UNLABELLED)))
    return cases


QUESTIONS = [
    Question(
        id="00.1",
        function="count_trainable",
        points=1,
        title="count trainable parameters",
        cases=cases_model,
        hint="count the elements (numel) of the parameters whose requires_grad is True.",
    ),
    Question(
        id="00.2",
        function="freeze_backbone",
        points=2,
        title="freeze the backbone, train the head",
        cases=cases_model,
        observe=trainable_flags,
        hint="set requires_grad on every backbone parameter AND on every head parameter "
        "(the head may arrive frozen).",
    ),
    Question(
        id="00.3",
        function="swap_head",
        points=2,
        title="a new head sized from the backbone",
        cases=cases_swap,
        observe=image_classifier_report,
        hint="the old head may be gone or belong to another task, so its sizes prove nothing: ask "
        "the backbone how wide its features are (its last layer, or its output on a dummy batch in "
        "eval mode: a forward pass in training mode moves the BatchNorm statistics).",
    ),
    Question(
        id="00.4",
        function="normalize",
        points=1,
        title="normalise an image batch",
        cases=cases_normalize,
        hint="each channel is shifted and scaled by its own statistics: the C numbers must line "
        "up with the channel axis of (N, C, H, W) (dim 1), not with its last axis.",
    ),
    Question(
        id="00.5",
        function="accuracy",
        points=1,
        title="accuracy from logits, unlabelled rows left out",
        cases=cases_accuracy,
        hint="a row labelled -100 is neither right nor wrong: leave it out of the correct rows and of "
        "the number of rows; the predicted class is the argmax over dim 1; return a Python float.",
    ),
    OpenQuestion(id="00.6", points=2, title="feature extraction or fine-tuning?"),
]
