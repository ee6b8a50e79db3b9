"""Parameter-efficient fine-tuning besides LoRA, and what each method costs per task.

- :func:`bitfit` (Ben Zaken et al. 2022): train only the bias vectors (and the new head);
- :class:`BottleneckAdapter` (Houlsby et al. 2019): ``h + up(gelu(down(h)))``, a small residual
  network with ``up`` at zero, so it starts as the identity; :func:`add_adapters` puts one after
  each named linear layer (for BERT-style encoders ``"output.dense"``: after the attention output
  and after the feed-forward output, Houlsby's places) and freezes the rest;
- :func:`task_state_dict` / :func:`task_bytes`: the tensors a task must store on top of the
  shared pretrained weights (the trainable ones) and their size as a safetensors file;
- :func:`training_memory`: bytes that training adds on top of the weights — gradients and AdamW's
  two moments for every trainable parameter, plus the activations autograd keeps for the backward
  pass (measured on one batch with ``torch.autograd.graph.saved_tensors_hooks``).

Introduced in notebooks/09_parameter_efficient.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from tlcourse.lora import linear_names, set_module


def bitfit(model: nn.Module, also: Iterable[str] = ("head",)) -> nn.Module:
    """Freeze every parameter except biases (names ending in ``bias``) and modules in ``also``."""
    also = list(also)
    for name, p in model.named_parameters():
        keep = name.endswith("bias") or any(name == a or name.startswith(a + ".") for a in also)
        p.requires_grad_(keep)
    return model


class BottleneckAdapter(nn.Module):
    """``h + up(gelu(down(h)))`` on ``h`` ``(..., dim)``; ``down``: dim -> bottleneck, ``up`` starts at 0."""

    def __init__(self, dim: int, bottleneck: int = 16) -> None:
        super().__init__()
        if bottleneck < 1:
            raise ValueError(f"bottleneck must be >= 1, got {bottleneck}.")
        self.down, self.up = nn.Linear(dim, bottleneck), nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(nn.functional.gelu(self.down(h)))


class Adapted(nn.Module):
    """A frozen layer followed by a :class:`BottleneckAdapter`: ``adapter(layer(x))``."""

    def __init__(self, layer: nn.Linear, bottleneck: int = 16) -> None:
        super().__init__()
        self.layer = layer.requires_grad_(False)
        self.adapter = BottleneckAdapter(layer.out_features, bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.layer(x))


def add_adapters(model: nn.Module, target_names: Iterable[str] | str, bottleneck: int = 16,
                 freeze_rest: bool = True) -> nn.Module:  # fmt: skip
    """Follow every ``nn.Linear`` named in ``target_names`` (or ending in ``.name``) by an adapter.

    With ``freeze_rest`` only the adapters train (unfreeze a new head afterwards). In place.
    """
    chosen = linear_names(model, target_names)
    if freeze_rest:
        model.requires_grad_(False)
    for name in chosen:
        set_module(model, name, Adapted(model.get_submodule(name), bottleneck))
    return model


def task_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trainable tensors of ``model`` (what a task stores beside the shared frozen weights)."""
    return {
        n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad
    }


def task_bytes(model: nn.Module) -> int:
    """Size in bytes of :func:`task_state_dict` written as a safetensors file (header included)."""
    return len(safetensors_bytes(task_state_dict(model)))


def saved_activation_bytes(model: nn.Module, run: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct tensors autograd saves for backward while ``run()`` computes a loss.

    Tensors that share storage (views, a tensor saved twice) are counted once; ``model``'s own
    parameters are not counted (they are in memory whether or not we train).
    """
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def training_memory(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss_fn: Callable | None = None) -> dict[str, int]:  # fmt: skip
    """Bytes training adds beyond the weights, for one batch ``x`` ``(N, ...)``, ``y`` ``(N,)``.

    ``{"gradients": ..., "adam_state": ..., "activations": ..., "total": ...}``: gradients and
    AdamW's two moments are one and two copies of the trainable parameters; activations are
    measured with :func:`saved_activation_bytes` on a forward pass in train mode.
    """
    loss_fn = loss_fn or nn.functional.cross_entropy
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    was_training = model.training
    model.train()

    activations = saved_activation_bytes(model, lambda: loss_fn(model(x), y))
    model.train(was_training)
    out = {"gradients": trainable, "adam_state": 2 * trainable, "activations": activations}
    return {**out, "total": sum(out.values())}
