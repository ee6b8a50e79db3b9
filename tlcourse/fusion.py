"""Model fusion: output ensembles, stacking, feature-level fusion and weight averaging (soups).

* Output ensembles combine what several models *predict*: :func:`average_probabilities`,
  :func:`majority_vote`; :func:`disagreement` measures how different two members are;
  :func:`ensemble_logits` evaluates same-architecture members in one vectorised call
  (``torch.func.stack_module_state`` + ``functional_call`` + ``vmap``).
* Stacking learns how to combine them: :func:`stacking_classifier` wraps scikit-learn's
  ``StackingClassifier`` (a meta-classifier on out-of-fold predictions) over blocks of cached
  features; :func:`feature_fusion_probe` fits one probe on the concatenated features instead.
* Weight averaging combines the *weights* into one model that costs one forward pass:
  :func:`uniform_soup` and :func:`greedy_soup` (Wortsman et al. 2022). It works only for
  fine-tunes of one pretrained start; integer buffers (``num_batches_tracked``) are copied.

Introduced in notebooks/08_fusion_and_distillation.ipynb.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.func import functional_call, stack_module_state


def _stacked(logits: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """``(M, N, C)`` from a list of M ``(N, C)`` tensors (or an ``(M, N, C)`` tensor), checked."""
    stacked = logits if isinstance(logits, torch.Tensor) else torch.stack(list(logits))
    if stacked.dim() != 3 or stacked.shape[0] == 0:
        raise ValueError(
            f"Expected the logits of M >= 1 members, shape (M, N, C); got {tuple(stacked.shape)}. "
            "Pass a list of (N, C) logits, one per member, all over the same examples."
        )
    return stacked


def average_probabilities(logits: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Soft voting: the mean of the members' softmax probabilities, ``(M, N, C) -> (N, C)``.

    Average probabilities, not logits: members whose logits have different scales then count
    the same.
    """
    return _stacked(logits).float().softmax(-1).mean(0)


def majority_vote(logits: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
    """Hard voting: each member votes for its argmax; the most votes wins, ``(M, N, C) -> (N,)``.

    Ties go to the class with the highest mean probability among the tied ones.
    """
    stacked = _stacked(logits)
    votes = nn.functional.one_hot(stacked.argmax(-1), stacked.shape[-1]).sum(0).float()
    tie_break = average_probabilities(stacked) * 0.5  # < one vote: only decides among ties
    return (votes + tie_break).argmax(-1)


def disagreement(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of examples where two members predict different classes (``(N, C)`` logits each)."""
    if a.shape != b.shape:
        raise ValueError(f"Both members must predict the same examples: {a.shape} vs {b.shape}.")
    return float((a.argmax(-1) != b.argmax(-1)).float().mean())


def accuracy(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Accuracy of ``(N, C)`` scores (logits or probabilities) or ``(N,)`` predicted classes."""
    predicted = scores.argmax(-1) if scores.dim() == 2 else scores
    return float((predicted == targets).float().mean())


@torch.no_grad()
def ensemble_logits(models: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Logits of M same-architecture models on one batch in one vectorised call: ``(M, N, C)``.

    ``stack_module_state`` stacks every parameter and buffer along a new leading axis;
    ``vmap`` maps ``functional_call`` (the architecture run with given weights) over that axis.
    Models run in eval mode (BatchNorm uses its running statistics).
    """
    if not models:
        raise ValueError("Give at least one model to ensemble.")
    names = [type(m).__name__ for m in models]
    shapes = {tuple((k, v.shape) for k, v in m.state_dict().items()) for m in models}
    if len(shapes) != 1:
        raise ValueError(
            f"vmap needs members of one architecture with identical shapes; got {names}. "
            "Evaluate different architectures one by one (engine.predict) and stack the logits."
        )
    for m in models:
        m.eval()
    params, buffers = stack_module_state(list(models))
    base = copy.deepcopy(models[0]).to("meta")  # the architecture only; weights come from vmap

    def run(p: dict, b: dict, inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(base, (p, b), (inputs,))

    return torch.vmap(run, in_dims=(0, 0, None))(params, buffers, x)


def soup_state(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of state dicts; integer tensors are copied from the first one.

    Float tensors (weights, BatchNorm running statistics) are averaged; integer buffers
    (``num_batches_tracked``) are counters, not weights, so averaging them means nothing.
    """
    if not states:
        raise ValueError("Give at least one state dict (ingredient) to average.")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if list(state) != keys or any(state[k].shape != states[0][k].shape for k in keys):
            raise ValueError(
                f"Ingredient {i} does not match ingredient 0 (keys or shapes differ): a soup "
                "averages fine-tunes of one architecture, started from the same pretrained weights."
            )
    out = {}
    for k in keys:
        first = states[0][k]
        if first.is_floating_point() or first.is_complex():
            out[k] = torch.stack([s[k].to(first.dtype) for s in states]).mean(0)
        else:
            out[k] = first.clone()
    return out


def uniform_soup(models: Sequence[nn.Module]) -> nn.Module:
    """A new model whose weights are the mean of ``models``' weights (the *uniform soup*).

    The models must share an architecture, and for the soup to work, a pretrained start.
    """
    if not models:
        raise ValueError("Give at least one model (ingredient) to make a soup.")
    soup = copy.deepcopy(models[0])
    soup.load_state_dict(soup_state([m.state_dict() for m in models]))
    return soup


def greedy_soup(
    models: Sequence[nn.Module], score: Callable[[nn.Module], float]
) -> tuple[nn.Module, list[int]]:
    """Wortsman et al.'s greedy soup: returns ``(soup, indices of the ingredients kept)``.

    Sort the ingredients by ``score`` (held-out accuracy: validation, never test), start from
    the best, and add each next one only if the uniform soup of those kept so far plus it
    scores strictly higher. The result scores at least as well as the best single ingredient.
    """
    if not models:
        raise ValueError("Give at least one model (ingredient) to make a soup.")
    scores = [score(m) for m in models]
    order = sorted(range(len(models)), key=lambda i: -scores[i])
    kept, best = [order[0]], scores[order[0]]
    for i in order[1:]:
        candidate = uniform_soup([models[j] for j in [*kept, i]])
        value = score(candidate)
        if value > best:
            kept, best = [*kept, i], value
    return uniform_soup([models[j] for j in kept]), kept


def interpolate(a: nn.Module, b: nn.Module, alpha: float) -> nn.Module:
    """The model with weights ``(1 - alpha) * a + alpha * b`` (integer buffers from ``a``)."""
    sa, sb = a.state_dict(), b.state_dict()
    state = {
        k: torch.lerp(v, sb[k].to(v.dtype), alpha) if v.is_floating_point() else v.clone()
        for k, v in sa.items()
    }
    model = copy.deepcopy(a)
    model.load_state_dict(state)
    return model


def permute_channels(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of a glyphnet-style ``Classifier`` with its hidden channels shuffled.

    Permuting a layer's output channels (and the next layer's inputs to match) changes the
    weights but not the function: the copy's logits equal the original's. Fine-tunes of the
    two are fine-tunes of two *different starts* that are exactly as good, the cleanest way to
    see why weight averaging needs a shared start. Handles backbones made of ``conv_block``
    (conv, BatchNorm, ReLU) and residual blocks with ``conv1``, ``conv2``, ``shortcut``.
    """
    gen = torch.Generator().manual_seed(seed)
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def permute(conv: str, bn: str, p_in: torch.Tensor | None) -> torch.Tensor:
        p_out = torch.randperm(state[f"{conv}.weight"].shape[0], generator=gen)
        _reorder(state, conv, bn, p_out, p_in)
        return p_out

    p = None
    for name, block in model.backbone.named_children():
        key = f"backbone.{name}"
        if all(hasattr(block, a) for a in ("conv1", "conv2", "shortcut")):
            if not isinstance(block.shortcut, nn.Sequential):
                raise ValueError(f"{key}: identity shortcuts are not supported.")
            inner = permute(f"{key}.conv1.0", f"{key}.conv1.1", p)
            out = permute(f"{key}.conv2.0", f"{key}.conv2.1", inner)
            _reorder(state, f"{key}.shortcut.0", f"{key}.shortcut.1", out, p)
            p = out
        elif isinstance(block, nn.Sequential) and isinstance(block[0], nn.Conv2d):
            p = permute(f"{key}.0", f"{key}.1", p)
        elif any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in block.modules()):
            raise ValueError(f"permute_channels does not know how to permute {key}.")
    state["head.weight"] = state["head.weight"][:, p]
    copy_ = copy.deepcopy(model)
    copy_.load_state_dict(state)
    return copy_


def _reorder(
    state: dict, conv: str, bn: str, p_out: torch.Tensor, p_in: torch.Tensor | None
) -> None:
    """Apply given output (and input) permutations to a conv + BatchNorm pair in ``state``."""
    state[f"{conv}.weight"] = state[f"{conv}.weight"][p_out]
    if p_in is not None:
        state[f"{conv}.weight"] = state[f"{conv}.weight"][:, p_in]
    for name in ("weight", "bias", "running_mean", "running_var"):
        state[f"{bn}.{name}"] = state[f"{bn}.{name}"][p_out]


def _probe(C: float = 1.0) -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def _columns(blocks: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Column indices of each named block of a concatenated feature matrix."""
    starts = np.cumsum([0, *blocks.values()])
    return {name: np.arange(starts[i], starts[i + 1]) for i, name in enumerate(blocks)}


def stacking_classifier(
    blocks: Mapping[str, int], *, C: float = 1.0, cv: int = 5, seed: int = 0
) -> StackingClassifier:
    """Stacking over blocks of concatenated cached features ``[f_1 | f_2 | ...]``.

    ``blocks`` maps a name (a backbone) to its feature width, in column order. Each base
    estimator is a standardised logistic probe on its own block; the meta-classifier (a
    logistic regression) learns from the base probes' out-of-fold class probabilities
    (``cv`` folds), so it never sees a probe's predictions on the probe's own training data.
    """
    estimators = [
        (name, make_pipeline(ColumnTransformer([(name, "passthrough", cols)]), _probe(C)))
        for name, cols in _columns(blocks).items()
    ]
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    return StackingClassifier(
        estimators, final_estimator=LogisticRegression(max_iter=2000), cv=folds
    )


def feature_fusion_probe(C: float = 1.0) -> Pipeline:
    """One standardised logistic probe for concatenated features ``[f_1 | f_2]`` (early fusion)."""
    return _probe(C)
