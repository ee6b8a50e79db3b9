"""Chapter 05 (Keras 3 and fastai): a Keras base tuned from the top, fastai groups, freezing, lrs.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/05_keras_and_fastai.ipynb. Keras is imported only inside the functions that
need it (through :mod:`tlcourse.keras_track`, which selects the torch backend), so loading this
question set stays fast; fastai is not needed at all: the fastai questions are about what its
rules do to plain PyTorch parameters.

Introduced in exercises/05_keras_and_fastai.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.questions import OpenQuestion, Question
from tlcourse.nets import Classifier, tiny_cnn
from tlcourse.surgery import BN_TYPES


def _tiny(gen: torch.Generator, num_classes: int | None = None) -> Classifier:
    """A tiny random Classifier (random width and class count) with non-trivial BatchNorm statistics."""
    num_classes = num_classes or int(torch.randint(2, 9, (1,), generator=gen))
    width = int(torch.randint(2, 5, (1,), generator=gen)) * 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        model = tiny_cnn(num_classes=num_classes, width=width)
    for module in model.modules():
        if isinstance(module, BN_TYPES):
            module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
    return model


# ------------------------------------------------------------ 05.1 a Keras base tuned from the top


def cases_top_tuned(gen: torch.Generator) -> list[tuple]:
    """Tiny backbones (3 blocks with parameters + a pool) with random requires_grad flags."""
    cases = []
    for size, n_top in ((8, 1), (12, 2), (8, 2)):
        backbone = _tiny(gen).backbone
        for p in backbone.parameters():
            p.requires_grad_(bool(torch.rand(1, generator=gen) < 0.5))
        cases.append((backbone, (3, size, size), n_top))
    return cases


def top_tuned_report(result: Any, args: tuple) -> dict[str, Any]:
    """Fit a model around the learner's layer for one epoch; report which blocks changed how."""
    from tlcourse import keras_track

    keras = keras_track.keras
    module, input_shape, n_top = args
    if not isinstance(result, keras.layers.Layer):
        return {"error": f"expected a Keras layer, got {type(result).__name__}"}
    names = [
        name for name, block in module.named_children() if any(True for _ in block.parameters())
    ]
    top = tuple(f"{name}." for name in names[len(names) - n_top :])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, *input_shape, generator=gen) * 2 + 1
    y = torch.randint(0, 3, (16,), generator=gen)
    features = keras.ops.convert_to_numpy(result(x[:4], training=False))
    inputs = keras.Input(shape=input_shape)
    model = keras.Model(inputs, keras.layers.Dense(3)(result(inputs)))
    keras_track.compile_classifier(model, lr=1e-2)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    model.fit(x.numpy(), y.numpy(), batch_size=8, epochs=1, verbose=0, shuffle=False)
    now = module.state_dict()

    def changed(keys: list[str]) -> bool:
        return any(not torch.equal(before[k], now[k]) for k in keys)

    stats = [k for k in before if "running" in k or "num_batches" in k]
    weights = [k for k in before if k not in stats]
    return {
        "features_shape": list(features.shape),
        "frozen blocks: weights changed": changed([k for k in weights if not k.startswith(top)]),
        "frozen blocks: BatchNorm statistics changed": changed(
            [k for k in stats if not k.startswith(top)]
        ),
        "top blocks: weights changed": changed([k for k in weights if k.startswith(top)]),
        "top blocks: BatchNorm statistics changed": changed(
            [k for k in stats if k.startswith(top)]
        ),
    }


# ------------------------------------------------------------ 05.2 a splitter with n groups


def cases_splitter(gen: torch.Generator) -> list[tuple]:
    """Backbones of 3 or 4 blocks with parameters (and parameter-free ones), 2 to blocks + 1 groups."""
    deeper = _tiny(gen)
    deeper.backbone.add_module(
        "extra",
        nn.Sequential(nn.Linear(deeper.head.in_features, deeper.head.in_features), nn.ReLU()),
    )
    deeper.backbone.add_module("norm", nn.Identity())
    models = [_tiny(gen), _tiny(gen), deeper, _tiny(gen)]
    cases = []
    for model in models:
        n_blocks = sum(1 for b in model.backbone.children() if any(True for _ in b.parameters()))
        cases.append((model, int(torch.randint(2, n_blocks + 2, (1,), generator=gen))))
    return cases


def group_names(result: Any, args: tuple) -> Any:
    """The parameter names in each group (so a group holding the same tensors in any form matches)."""
    names = {id(p): n for n, p in args[0].named_parameters()}
    try:
        return [
            [names.get(id(p), "<not a parameter of the model>") for p in group] for group in result
        ]
    except TypeError:
        return {"error": f"expected a list of parameter lists, got {type(result).__name__}"}


# ----------------------------------------------------------- 05.3 trainable after freeze_to(n)


def cases_freeze_to(gen: torch.Generator) -> list[tuple]:
    return [(_tiny(gen), 2), (_tiny(gen), -1), (_tiny(gen), 0), (_tiny(gen), 4)]


# ------------------------------------------------------------------- 05.4 lrs from a slice


def cases_group_lrs(gen: torch.Generator) -> list[tuple]:
    hi = 10.0 ** -float(torch.empty(1).uniform_(2.0, 4.0, generator=gen))
    return [(slice(hi / 100, hi), 3), (slice(None, hi), 4), (hi, 2), (slice(hi / 10, hi), 5)]


QUESTIONS = [
    Question(
        id="05.1",
        function="top_tuned_base",
        points=3,
        title="a Keras base fine-tuned from the top",
        cases=cases_top_tuned,
        observe=top_tuned_report,
        hint="a frozen block has two kinds of state: weights (frozen through requires_grad, before "
        "Keras wraps them) and BatchNorm statistics (kept only by eval mode, which fit's training "
        "flag overrides unless your call() decides); the top blocks need neither protection.",
    ),
    Question(
        id="05.2",
        function="grouped_splitter",
        points=2,
        title="a splitter with a fixed number of groups",
        cases=cases_splitter,
        observe=group_names,
        hint="a group is a run of consecutive blocks with parameters (parameter-free blocks belong to "
        "none); when they do not divide evenly, the earlier runs are one block longer; the head last.",
    ),
    Question(
        id="05.3",
        function="trainable_after_freeze_to",
        points=2,
        title="what trains after freeze_to(n)",
        cases=cases_freeze_to,
        hint="groups before index n are frozen (a negative n counts from the end), except the parameters of "
        "BatchNorm layers, which fastai keeps trainable (train_bn=True).",
    ),
    Question(
        id="05.4",
        function="group_lrs",
        points=1,
        title="learning rates from a slice",
        cases=cases_group_lrs,
        hint="slice(lo, hi): geometric steps from lo to hi; slice(None, hi): hi/10 for every group but "
        "the last; a plain number: the same for every group. Return floats.",
    ),
    OpenQuestion(id="05.5", points=2, title="when fine-tuning hurts right after unfreezing"),
]
