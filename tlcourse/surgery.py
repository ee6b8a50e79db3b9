"""Model surgery: replace a head, freeze and unfreeze, BatchNorm handling, parameter groups.

Works on any ``nn.Module``; the depth-based helpers expect the course's
:class:`~tlcourse.nets.Classifier` (``model.backbone`` = named blocks, ``model.head``).

Introduced in notebooks/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatch

import pandas as pd
from torch import nn

from tlcourse.guards import check_num_classes

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def count_parameters(model: nn.Module, trainable: bool | None = None) -> int:
    """Number of parameters: all (``None``), only trainable (``True``) or only frozen (``False``)."""
    return sum(
        p.numel() for p in model.parameters() if trainable is None or p.requires_grad == trainable
    )


def replace_head(model: nn.Module, num_classes: int, attr: str | None = None) -> nn.Module:
    """Swap the final ``nn.Linear`` (``model.head``, ``.fc`` or ``.classifier``) for a fresh one.

    Returns ``model`` (changed in place) whose logits now have shape ``(N, num_classes)``.
    """
    num_classes = check_num_classes(num_classes, "replace_head")
    attr = attr or next((a for a in ("head", "fc", "classifier") if hasattr(model, a)), None)
    if attr is None:
        raise AttributeError(
            f"{type(model).__name__} has no 'head', 'fc' or 'classifier'; pass attr='<name of the last layer>'."
        )
    old = getattr(model, attr)
    linears = (
        [m for m in old.modules() if isinstance(m, nn.Linear)] if isinstance(old, nn.Module) else []
    )
    if not linears:
        raise TypeError(f"model.{attr} contains no nn.Linear to replace.")
    setattr(model, attr, nn.Linear(linears[-1].in_features, num_classes))
    return model


def _matching(model: nn.Module, patterns: Iterable[str] | str | None) -> list[nn.Parameter]:
    if patterns is None:
        return list(model.parameters())
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    named = list(model.named_parameters())
    chosen = [
        p
        for n, p in named
        if any(n == pat or n.startswith(pat + ".") or fnmatch(n, pat) for pat in patterns)
    ]
    if not chosen:
        raise KeyError(
            f"No parameter name matches {patterns}; names look like {[n for n, _ in named[:4]]}."
        )
    return chosen


def freeze(model: nn.Module, names: Iterable[str] | str | None = None) -> nn.Module:
    """Freeze all parameters, or those under the given module names / glob patterns."""
    for p in _matching(model, names):
        p.requires_grad_(False)
    return model


def unfreeze(model: nn.Module, names: Iterable[str] | str | None = None) -> nn.Module:
    """Make all parameters trainable, or those under the given names / glob patterns."""
    for p in _matching(model, names):
        p.requires_grad_(True)
    return model


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The backbone's named blocks in order (``stem``, ``block1``, …) that hold parameters."""
    backbone = getattr(model, "backbone", model)
    return [(n, m) for n, m in backbone.named_children() if any(True for _ in m.parameters())]


def freeze_blocks(model: nn.Module, k: int) -> nn.Module:
    """Freeze the first ``k`` backbone blocks; everything after them (and the head) trains."""
    named = blocks(model)
    if not 0 <= k <= len(named):
        raise ValueError(
            f"k={k} is out of range: the backbone has {len(named)} blocks ({[n for n, _ in named]})."
        )
    unfreeze(model)
    for _, block in named[:k]:
        freeze(block)
    return model


def set_bn_eval(model: nn.Module) -> nn.Module:
    """Put every BatchNorm layer whose parameters are all frozen into eval mode.

    Frozen BatchNorm layers then normalise with their pretrained running statistics instead of
    the current batch's. Call it after ``model.train()`` (``fit`` does this for you).
    """
    for module in model.modules():
        if isinstance(module, BN_TYPES):
            params = list(module.parameters())
            if params and not any(p.requires_grad for p in params):
                module.eval()
    return model


def param_groups(
    model: nn.Module, lrs: dict[str, float], default_lr: float | None = None
) -> list[dict]:
    """Optimizer parameter groups with one learning rate per module prefix.

    ``param_groups(model, {"backbone": 1e-4, "head": 1e-2})`` -> groups for ``torch.optim``.
    Frozen parameters are left out; parameters matching no prefix get ``default_lr`` (or raise).
    """
    groups = {prefix: [] for prefix in lrs}
    rest = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        prefix = next((pre for pre in lrs if name == pre or name.startswith(pre + ".")), None)
        (groups[prefix] if prefix else rest).append(p)
    if rest and default_lr is None:
        raise ValueError(
            f"{len(rest)} trainable parameter(s) match none of {list(lrs)}; pass default_lr=."
        )
    out = [{"params": ps, "lr": lrs[pre], "name": pre} for pre, ps in groups.items() if ps]
    return out + ([{"params": rest, "lr": default_lr, "name": "rest"}] if rest else [])


def discriminative_groups(model: nn.Module, lr: float, factor: float = 0.5) -> list[dict]:
    """Head at ``lr``; each backbone block ``factor`` times the one above it (ULMFiT-style)."""
    names = [f"backbone.{n}" for n, _ in blocks(model)]
    lrs = {"head": lr} | {name: lr * factor ** (len(names) - i) for i, name in enumerate(names)}
    return param_groups(model, lrs, default_lr=lr)


def trainable_summary(model: nn.Module) -> pd.DataFrame:
    """One row per top-level part (backbone blocks, head): parameters, trainable, frozen."""
    parts = [(f"backbone.{n}", m) for n, m in blocks(model)] if hasattr(model, "backbone") else []
    parts += [(n, m) for n, m in model.named_children() if n != "backbone"]
    rows = [
        {
            "part": name,
            "parameters": count_parameters(m),
            "trainable": count_parameters(m, True),
            "frozen": count_parameters(m, False),
        }
        for name, m in parts
    ]
    rows.append(
        {
            "part": "total",
            "parameters": count_parameters(model),
            "trainable": count_parameters(model, True),
            "frozen": count_parameters(model, False),
        }
    )
    return pd.DataFrame(rows).set_index("part")
