"""LoRA (Hu et al. 2021) written out: a frozen linear layer plus a trainable low-rank update.

A pretrained ``nn.Linear`` computes ``y = x Wᵀ + b`` with ``W`` of shape ``(out, in)``. LoRA keeps
``W`` frozen and learns ``ΔW = (alpha / r) · B A`` with ``A`` of shape ``(r, in)`` and ``B`` of shape
``(out, r)``: ``r · (in + out)`` trainable numbers instead of ``in · out``. ``B`` starts at zero, so
the wrapped model starts exactly as the pretrained one.

- :class:`LoRALinear` wraps one layer; :func:`inject` wraps the named layers of a model and
  freezes everything else;
- :func:`merge` folds the update back into one plain ``nn.Linear`` (``W + (alpha/r) B A``), so
  inference costs nothing extra; :func:`merge_all` does it for a whole model;
- :func:`lora_state_dict` / :func:`load_lora_state_dict`: only the ``A`` and ``B`` tensors, the part
  that differs from task to task.

The production implementation is the ``peft`` library; ``tests/test_lora.py`` checks that this
one gives peft's outputs for the same ``A`` and ``B``.

Introduced in notebooks/09_parameter_efficient.ipynb.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) · x Aᵀ Bᵀ``: x ``(..., in_features)`` -> ``(..., out_features)``.

    ``base`` is frozen (its weight and bias get ``requires_grad=False``); ``A`` ``(r, in_features)``
    starts as ``nn.Linear``'s default (Kaiming-uniform, as in peft), ``B`` ``(out_features, r)`` at 0.
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(
                f"LoRALinear wraps an nn.Linear, got {type(base).__name__}; "
                "pick linear layers as targets (print(model) shows their names)."
            )
        if int(r) != r or r < 1:
            raise ValueError(f"The rank r must be a positive integer, got {r!r}.")
        self.base, self.r, self.alpha = base, int(r), float(alpha)
        for p in base.parameters():
            p.requires_grad_(False)
        weight = base.weight
        self.A = nn.Parameter(
            torch.empty(self.r, base.in_features, dtype=weight.dtype, device=weight.device)
        )
        self.B = nn.Parameter(
            torch.zeros(base.out_features, self.r, dtype=weight.dtype, device=weight.device)
        )
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        """``alpha / r``: keeps the update's size comparable when ``r`` changes."""
        return self.alpha / self.r

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """The update ``(alpha / r) · B A`` of shape ``(out_features, in_features)``."""
        return (self.B @ self.A) * self.scaling

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}"


def merge(layer: LoRALinear) -> nn.Linear:
    """A new plain ``nn.Linear`` with weight ``W + (alpha/r) B A`` and the base's bias: same outputs."""
    if not isinstance(layer, LoRALinear):
        raise TypeError(f"merge expects a LoRALinear, got {type(layer).__name__}.")
    base = layer.base
    merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                       device=base.weight.device, dtype=base.weight.dtype)  # fmt: skip
    with torch.no_grad():
        merged.weight.copy_(base.weight + layer.delta_weight())
        if base.bias is not None:
            merged.bias.copy_(base.bias)
    merged.requires_grad_(False)
    return merged


def matches(name: str, targets: Iterable[str]) -> bool:
    """True if the module ``name`` is one of ``targets`` or ends with ``.target`` (peft's list rule)."""
    return any(name == t or name.endswith("." + t) for t in targets)


def linear_names(model: nn.Module, targets: Iterable[str] | str) -> list[str]:
    """Names of the ``nn.Linear`` modules of ``model`` that :func:`matches` ``targets``; raises if none."""
    targets = [targets] if isinstance(targets, str) else list(targets)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    chosen = [n for n in linears if matches(n, targets)]
    if not chosen:
        raise ValueError(
            f"No nn.Linear named {targets} (or ending in '.<name>'); this model's linear layers "
            f"are named like {linears[:6]}."
        )
    return chosen


def set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule called ``name`` (dotted, e.g. ``"encoder.layer.0.attention"``) by ``module``."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def inject(model: nn.Module, target_names: Iterable[str] | str, r: int = 8, alpha: float = 16.0,
           freeze_rest: bool = True) -> nn.Module:  # fmt: skip
    """Wrap every ``nn.Linear`` whose name is in ``target_names`` (or ends with ``.name``) in :class:`LoRALinear`.

    With ``freeze_rest`` every other parameter is frozen too, so only the ``A`` and ``B`` matrices
    train (unfreeze a new head afterwards, e.g. ``surgery.unfreeze(model, "head")``).
    Changes ``model`` in place and returns it; raises ``ValueError`` if nothing matches.
    """
    chosen = linear_names(model, target_names)
    if freeze_rest:
        model.requires_grad_(False)
    for name in chosen:
        set_module(model, name, LoRALinear(model.get_submodule(name), r, alpha))
    return model


def merge_all(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` in ``model`` by :func:`merge` of it (in place); returns ``model``."""
    for name in [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]:
        set_module(model, name, merge(model.get_submodule(name)))
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA tensors of ``model``: ``{"<layer>.A": (r, in), "<layer>.B": (out, r), ...}``."""
    return {
        f"{name}.{p}": getattr(m, p).detach().clone()
        for name, m in model.named_modules()
        if isinstance(m, LoRALinear)
        for p in ("A", "B")
    }


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy ``A`` and ``B`` tensors from :func:`lora_state_dict` into ``model``'s LoRA layers."""
    own = dict(model.named_parameters())
    missing = sorted(set(state) - set(own))
    if missing:
        raise KeyError(
            f"{missing[:3]} are not parameters of this model: inject LoRA into the same layers "
            "with the same rank first (lora.inject), then load."
        )
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)
    return model
