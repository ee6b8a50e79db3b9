"""Compression: make a fine-tuned model smaller or faster, and measure what each step buys.

* :func:`measure`: the one yardstick for every variant: size of its weights file, CPU latency at
  batch 1 and batch 64 (warm-up, then the median of repeats, threads fixed), accuracy.
* Unstructured pruning (:func:`magnitude_prune`, :func:`sparsity`): zeros in dense tensors.
* Structured pruning: :func:`prune_channels` removes whole channels with torch-pruning, which
  follows residual couplings; :func:`prune_conv_pair` does it by hand for a plain conv chain;
  :func:`save_pruned` / :func:`load_pruned` store a pruned model as safetensors plus its layer
  widths (data, never a pickle).
* Quantization lives in :mod:`tlcourse.quantize`; :func:`weights_state` saves its int8 models.

Introduced in notebooks/10_compression.ipynb.
"""

from __future__ import annotations

import copy
import json
import operator
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcourse import timing
from tlcourse.atomic import atomic_write

WIDTH_ATTRS = (
    "in_channels",
    "out_channels",
    "groups",
    "num_features",
    "in_features",
    "out_features",
)
PRUNABLE = (nn.Conv2d, nn.Linear)


# ----------------------------------------------------------------------------- measuring


def batch_of(example: torch.Tensor, size: int) -> torch.Tensor:
    """A batch of ``size`` rows cycled from ``example`` ``(n, ...)``: a batch of any size from a few inputs."""
    return example[torch.arange(size) % len(example)].contiguous()


def latency_ms(model: Any, batch: torch.Tensor, *, warmup: int = 3, repeats: int = 10) -> float:
    """Median wall milliseconds of one ``model(batch)`` call, after ``warmup`` untimed calls."""
    with torch.no_grad():
        return timing.latency_ms(lambda: model(batch), warmup=warmup, repeats=repeats)


def accuracy(model: Any, loader: Iterable) -> float:
    """Top-1 accuracy of ``model`` over ``(x, y)`` batches, without autograd."""
    correct = total = 0
    with torch.no_grad():
        for x, y, *_ in loader:
            correct += int((model(x).argmax(-1) == y).sum())
            total += len(y)
    if total == 0:
        raise ValueError("The loader is empty: nothing to score. Check the dataset.")
    return correct / total


def measure(
    model: Any,
    example_inputs: torch.Tensor,
    *,
    loader: Iterable | None = None,
    batch_sizes: Sequence[int] = (1, 64),
    warmup: int = 3,
    repeats: int = 10,
    threads: int | None = None,
    weights: nn.Module | str | os.PathLike | None = None,
    compressed: bool = False,
) -> dict[str, Any]:
    """Size, latency and accuracy of one model variant: one row of a compression table.

    Args:
        model: anything callable on a batch ``(N, ...)`` -> logits ``(N, C)`` (a module, an int8
            graph, a compiled model). Modules are put in eval mode for the measurement and back.
        example_inputs: ``(n, ...)`` inputs; batches of each size in ``batch_sizes`` cycle them.
        loader: ``(x, y)`` batches for the accuracy (left out when ``None``).
        threads: torch's CPU threads during the timing (default: the current setting);
            restored afterwards and reported, since latencies mean little without it.
        weights: what to save for the size (default ``model``): a module, whose
            :func:`weights_state` is written as safetensors, or the path of an existing file.
        compressed: also report the size after zlib compression (what zeros would save in a
            compressed or sparse format).

    Returns ``{"size_mb", "ms_b1", "ms_b64" (one per batch size), "accuracy", "threads"}``
    (+ ``"zlib_mb"``); latencies are wall milliseconds per call, median of ``repeats``.
    """
    if example_inputs.dim() == 0 or len(example_inputs) == 0:
        raise ValueError("example_inputs must be a batch (n, ...) with n >= 1.")
    data = weights_file_bytes(model if weights is None else weights)
    row: dict[str, Any] = {"size_mb": len(data) / 1e6}
    if compressed:
        row["zlib_mb"] = len(zlib.compress(data, 6)) / 1e6
    before, was_training = torch.get_num_threads(), getattr(model, "training", False)
    if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
        model.eval()
    try:
        torch.set_num_threads(threads or before)
        row["threads"] = torch.get_num_threads()
        for size in batch_sizes:
            batch = batch_of(example_inputs, size)
            row[f"ms_b{size}"] = latency_ms(model, batch, warmup=warmup, repeats=repeats)
        if loader is not None:
            row["accuracy"] = accuracy(model, loader)
    finally:
        torch.set_num_threads(before)
        if isinstance(model, nn.Module) and not isinstance(model, torch.fx.GraphModule):
            model.train(was_training)
    return row


# ------------------------------------------------------------------- what a weights file holds


def _unwrap(model: nn.Module) -> nn.Module:
    """The module that owns the weights: through :class:`Compiled` and ``torch.compile``."""
    while True:
        inner = getattr(model, "graph_module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


def _plain(name: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
    """A tensor subclass (torchao's int8 weights) as its plain inner tensors, else itself."""
    if type(tensor) in (torch.Tensor, nn.Parameter) or not hasattr(tensor, "__tensor_flatten__"):
        return {name: tensor.detach().contiguous().clone()}
    inner, _ = tensor.__tensor_flatten__()
    return {
        k: v for attr in inner for k, v in _plain(f"{name}.{attr}", getattr(tensor, attr)).items()
    }


def weights_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a deployed ``model`` needs, as plain tensors (safetensors can hold them).

    A PT2E int8 graph keeps dead fp32 copies of the original weights as attributes: only the
    tensors its graph reads (``get_attr`` nodes: int8 weights, scales, zero points) are kept.
    """
    model = _unwrap(model)
    if isinstance(model, torch.fx.GraphModule):
        used = [n.target for n in model.graph.nodes if n.op == "get_attr"]
        return {
            k: v for name in used for k, v in _plain(name, operator.attrgetter(name)(model)).items()
        }
    return {k: v for name, t in model.state_dict().items() for k, v in _plain(name, t).items()}


def weights_file_bytes(weights: nn.Module | str | os.PathLike) -> bytes:
    """The bytes of a weights file: an existing file's, or ``weights_state(module)`` as safetensors."""
    from safetensors.torch import save

    if isinstance(weights, str | os.PathLike):
        return Path(weights).read_bytes()
    return save(weights_state(weights))


# ---------------------------------------------------------------------- unstructured pruning


def magnitude_prune(model: nn.Module, amount: float, *, permanent: bool = True) -> nn.Module:
    """A copy of ``model`` with the ``amount`` fraction of smallest conv/linear weights zeroed.

    Global L1 magnitude pruning with ``torch.nn.utils.prune``: masks and a forward hook are added;
    ``permanent`` removes them again (``prune.remove``), leaving plain dense tensors with zeros.
    """
    from torch.nn.utils import prune

    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount is the fraction of weights to zero, in [0, 1); got {amount}.")
    pruned = copy.deepcopy(model)
    targets = [(m, "weight") for m in pruned.modules() if isinstance(m, PRUNABLE)]
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    if permanent:
        for module, name in targets:
            prune.remove(module, name)
    return pruned


def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the conv and linear weights of ``model``."""
    weights = [m.weight for m in model.modules() if isinstance(m, PRUNABLE)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


# ------------------------------------------------------------------------ structured pruning


def _output_layers(model: nn.Module) -> list[nn.Module]:
    head = getattr(model, "head", None)
    if head is not None:
        return [head]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1:]


def prune_channels(
    model: nn.Module,
    amount: float,
    example_inputs: torch.Tensor,
    *,
    ignored_layers: Sequence[nn.Module] | None = None,
) -> nn.Module:
    """A new, smaller copy of ``model`` with ``amount`` of each layer's channels removed.

    torch-pruning traces ``model`` on ``example_inputs`` ``(n, ...)`` to find the layers that must
    lose the same channels (a residual sum couples its two branches), ranks the channel groups by
    their weights' L2 norm, and removes the smallest. The head (``model.head``, else the last
    ``nn.Linear``) is left whole, so the output shape ``(N, C)`` is unchanged. Parameters shrink by
    about ``1 - (1 - amount)**2``. Store the result with :func:`save_pruned`.
    """
    import torch_pruning as tp

    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount is the fraction of channels to remove, in [0, 1); got {amount}.")
    pruned = copy.deepcopy(model).eval()
    with torch.no_grad():
        before = pruned(example_inputs).shape
    keep = list(ignored_layers) if ignored_layers is not None else _output_layers(model)
    keep_ids = {id(m) for m in keep}
    ignored = [
        m for m, orig in zip(pruned.modules(), model.modules(), strict=True) if id(orig) in keep_ids
    ]
    pruner = tp.pruner.BasePruner(
        pruned,
        example_inputs,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=amount,
        ignored_layers=ignored,
    )
    pruner.step()
    with torch.no_grad():
        after = pruned(example_inputs).shape
    if after != before:
        raise RuntimeError(f"Pruning changed the output shape {tuple(before)} -> {tuple(after)}.")
    return pruned.train(model.training)


def widths(model: nn.Module) -> dict[str, dict[str, int]]:
    """Each layer's width attributes (channels, features, groups) by module name: the architecture
    of a pruned model as data."""
    found = {}
    for name, module in model.named_modules():
        attrs = {
            a: getattr(module, a) for a in WIDTH_ATTRS if isinstance(getattr(module, a, None), int)
        }
        if attrs:
            found[name] = attrs
    return found


def save_pruned(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save a pruned model as one safetensors file: its weights, and its :func:`widths` as metadata.

    No pickle: :func:`load_pruned` rebuilds the model from the unpruned architecture.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": "tlcourse-pruned-1", "widths": json.dumps(widths(model))}
    return atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_pruned(path: str | os.PathLike, model: nn.Module) -> nn.Module:
    """Load a :func:`save_pruned` file into ``model``, a fresh copy of the *unpruned* architecture.

    Each layer is resized to the stored widths and gets empty tensors of the stored shapes; then
    the weights are loaded strictly. Returns ``model`` (changed in place), in eval mode.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != "tlcourse-pruned-1":
        raise ValueError(f"{path} is no pruned-model file (save it with compress.save_pruned).")
    state = load_file(str(path))
    missing = set(model.state_dict()) ^ set(state)
    if missing:
        raise ValueError(
            f"{path} does not fit this architecture: {len(missing)} tensor names differ, e.g. "
            f"{sorted(missing)[:3]}. Pass the unpruned model the file was pruned from."
        )
    for name, attrs in json.loads(meta["widths"]).items():
        module = model.get_submodule(name)
        for attr, value in attrs.items():
            setattr(module, attr, value)
    for key, tensor in state.items():
        module_name, _, tensor_name = key.rpartition(".")
        module = model.get_submodule(module_name)
        if tensor_name in module._parameters:
            old = module._parameters[tensor_name]
            module._parameters[tensor_name] = nn.Parameter(
                torch.empty_like(tensor), requires_grad=old is None or old.requires_grad
            )
        else:
            module._buffers[tensor_name] = torch.empty_like(tensor)
    model.load_state_dict(state)
    return model.eval()


def prune_conv_pair(
    conv: nn.Conv2d, bn: nn.BatchNorm2d, next_conv: nn.Conv2d, keep: torch.Tensor
) -> tuple[nn.Conv2d, nn.BatchNorm2d, nn.Conv2d]:
    """Keep only output channels ``keep`` of ``conv``, by hand, in a plain conv -> BN -> conv chain.

    Slices ``conv``'s filters (``weight[keep]``, ``bias[keep]``), the BatchNorm's four tensors
    (``weight``, ``bias``, ``running_mean``, ``running_var``) and ``next_conv``'s input channels
    (``weight[:, keep]``). Returns new modules; the new BatchNorm takes ``bn``'s mode (a fresh
    ``nn.BatchNorm2d`` starts in *train* mode, which would normalise with batch statistics).
    """
    if conv.groups != 1 or next_conv.groups != 1:
        raise ValueError("prune_conv_pair slices ordinary convolutions (groups=1) only.")
    keep = torch.as_tensor(keep, dtype=torch.long)
    if keep.numel() == 0 or keep.max() >= conv.out_channels:
        raise ValueError(f"keep must index 1..{conv.out_channels} channels, got {keep.tolist()}.")

    def like(c: nn.Conv2d, c_in: int, c_out: int) -> nn.Conv2d:
        return nn.Conv2d(
            c_in,
            c_out,
            c.kernel_size,
            c.stride,
            c.padding,
            c.dilation,
            bias=c.bias is not None,
            padding_mode=c.padding_mode,
        )

    new_conv = like(conv, conv.in_channels, len(keep))
    new_bn = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum)
    new_next = like(next_conv, len(keep), next_conv.out_channels)
    with torch.no_grad():
        new_conv.weight.copy_(conv.weight[keep])
        if conv.bias is not None:
            new_conv.bias.copy_(conv.bias[keep])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_bn, name).copy_(getattr(bn, name)[keep])
        new_bn.num_batches_tracked.copy_(bn.num_batches_tracked)
        new_next.weight.copy_(next_conv.weight[:, keep])
        if next_conv.bias is not None:
            new_next.bias.copy_(next_conv.bias)
    return new_conv, new_bn.train(bn.training), new_next
