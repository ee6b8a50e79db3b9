"""Export a fine-tuned model so that it can leave the notebook, and prove that it still agrees.

- :class:`WithPreprocessing` puts the input scaling and normalisation *inside* the model: the
  exported graph takes ``uint8`` RGB images ``(N, 3, H, W)``, so nobody can feed it images
  normalised with the wrong statistics.
- :func:`to_torch_export` (``torch.export``, a ``.pt2`` program) and :func:`to_onnx` (one
  self-contained ``.onnx`` file for onnxruntime) both keep the batch dimension dynamic.
- :func:`check_parity` runs the artefact beside the PyTorch model and measures the largest logit
  difference; :func:`latency_ms` times either.
- :func:`save_state` / :func:`load_state` keep a whole training state (weights, optimizer moments,
  random-number states) in one safetensors file: tensors and JSON only, no pickle.
- :func:`write_card` writes the model card next to an artefact.

Introduced in notebooks/13_export_and_deployment.ipynb.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tlcourse.atomic import atomic_write
from tlcourse.predict import META_CLASSES, META_INPUT, META_INPUT_SIZE, load_session
from tlcourse.timing import latency_ms  # noqa: F401 - export.latency_ms times a session or a model

Inputs = torch.Tensor | Sequence[torch.Tensor]


class WithPreprocessing(nn.Module):
    """``model`` behind its own preprocessing: ``uint8`` RGB ``(N, 3, H, W)`` -> logits ``(N, C)``.

    The images are scaled to [0, 1] and normalised with the backbone's ``mean`` and ``std``
    inside ``forward``, so an exported graph carries them (as two constant tensors).
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(
                f"WithPreprocessing takes raw uint8 RGB images (N, 3, H, W) in 0..255; got "
                f"{images.dtype}. Pass the decoded pixels, not normalised floats: the "
                "normalisation happens inside."
            )
        x = images.to(torch.float32) / 255.0
        return self.model((x - self.mean) / self.std)


def _as_tuple(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    return (inputs,) if isinstance(inputs, torch.Tensor) else tuple(inputs)


def _dynamic_batch(inputs: tuple[torch.Tensor, ...]) -> tuple[dict[int, Any], ...]:
    """``dynamic_shapes`` that free dimension 0 of every input (one shared batch size)."""
    for x in inputs:
        if x.dim() == 0 or x.shape[0] < 2:
            raise ValueError(
                f"Export with an example batch of at least 2 (got shape {tuple(x.shape)}): with a "
                "batch of 1 the exporter specialises the batch size to 1."
            )
    batch = torch.export.Dim("batch")
    return tuple({0: batch} for _ in inputs)


def _eval(model: nn.Module) -> nn.Module:
    """``model`` in eval mode; a module captured by ``torch.export`` (e.g. a PT2E-quantized one)
    was traced in its mode already and refuses ``.eval()``, so it is passed through."""
    return model if isinstance(model, torch.fx.GraphModule) else model.eval()


def to_torch_export(
    model: nn.Module, example_inputs: Inputs, path: str | os.PathLike | None = None
) -> torch.export.ExportedProgram:
    """``torch.export`` the eval-mode ``model`` with a dynamic batch; save to ``path`` (``.pt2``).

    Data-dependent Python control flow (``if x.sum() > 0:``) cannot be captured and raises;
    rewrite it with ``torch.where`` or ``torch.cond``. Load with ``torch.export.load(path)``.
    """
    inputs = _as_tuple(example_inputs)
    program = torch.export.export(_eval(model), inputs, dynamic_shapes=_dynamic_batch(inputs))
    if path is not None:
        path = Path(path)
        if path.suffix != ".pt2":
            raise ValueError(f"torch.export programs are saved as .pt2 files; got {path.name!r}.")
        buffer = io.BytesIO()  # torch.export.save wants a .pt2 name; the temp file has another
        torch.export.save(program, buffer)
        atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return program


def to_onnx(
    model: nn.Module,
    example_inputs: Inputs,
    path: str | os.PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export the eval-mode ``model`` to one self-contained ONNX file with a dynamic batch.

    Uses the current (``dynamo=True``) exporter; ``external_data=False`` keeps the weights inside
    the file instead of a ``.onnx.data`` side file. ``metadata`` (strings) is stored in the
    model's ``metadata_props``, where :mod:`tlcourse.predict` reads the class names and input size.
    The example batch must hold at least 2 items. Returns ``path``.
    """
    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"ONNX models are saved as .onnx files; got {path.name!r}.")
    inputs = _as_tuple(example_inputs)
    with warnings.catch_warnings():  # a captured module keeps training=True; its ops are eval's
        warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")
        program = torch.onnx.export(
            _eval(model), inputs, dynamo=True, dynamic_shapes=_dynamic_batch(inputs), verbose=False
        )
    program.model.metadata_props.update({k: str(v) for k, v in (metadata or {}).items()})
    return atomic_write(path, lambda tmp: program.save(tmp, external_data=False))


def image_metadata(classes: Sequence[str], input_size: Sequence[int], **extra: str) -> dict:
    """The ``metadata`` that :func:`to_onnx` stores for an image classifier behind
    :class:`WithPreprocessing`: class names, ``(3, H, W)``, and what the input is."""
    return {
        META_CLASSES: json.dumps(list(classes)),
        META_INPUT_SIZE: json.dumps(list(input_size)),
        META_INPUT: "uint8 RGB images (N, 3, H, W), 0..255; scaling and normalisation are inside",
        **extra,
    }


def run_artefact(artefact: Any, inputs: Inputs) -> np.ndarray:
    """Run an exported model on ``inputs``; return its first output as a numpy array.

    ``artefact``: a path to an ``.onnx`` file (onnxruntime, one thread) or a ``.pt2`` program,
    an ``ExportedProgram``, or any callable taking the input tensors.
    """
    inputs = _as_tuple(inputs)
    if isinstance(artefact, (str, os.PathLike)) and Path(artefact).suffix == ".onnx":
        session = load_session(artefact)
        feed = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
        return session.run(None, feed)[0]
    if isinstance(artefact, (str, os.PathLike)):
        artefact = torch.export.load(str(artefact))
    if isinstance(artefact, torch.export.ExportedProgram):
        artefact = artefact.module()
    with torch.no_grad():
        out = artefact(*inputs)
    return (out[0] if isinstance(out, (tuple, list)) else out).detach().numpy()


class ParityError(AssertionError):
    """An exported model disagrees with the PyTorch model beyond the tolerance."""


@dataclass(frozen=True)
class Parity:
    """How far an artefact's outputs are from the PyTorch model's on the same inputs."""

    max_abs_diff: float
    same_prediction: float  # fraction of rows with the same argmax
    atol: float

    def __str__(self) -> str:
        return (
            f"max |difference| {self.max_abs_diff:.2e} (tolerance {self.atol:.0e}); "
            f"same prediction on {100 * self.same_prediction:.1f} % of rows"
        )


def check_parity(model: nn.Module, artefact: Any, inputs: Inputs, *, atol: float = 1e-4) -> Parity:
    """Compare ``artefact`` (see :func:`run_artefact`) with eval-mode ``model`` on ``inputs``.

    Returns the :class:`Parity`; raises :class:`ParityError` when the largest absolute output
    difference exceeds ``atol`` (pass ``atol=float("inf")`` to only measure).
    """
    inputs = _as_tuple(inputs)
    with torch.no_grad():
        expected = _eval(model)(*inputs).numpy()
    found = run_artefact(artefact, inputs)
    if found.shape != expected.shape:
        raise ParityError(f"Output shape {found.shape} differs from PyTorch's {expected.shape}.")
    diff = float(np.abs(found - expected).max())
    same = float((found.argmax(-1) == expected.argmax(-1)).mean()) if found.ndim > 1 else 1.0
    parity = Parity(diff, same, atol)
    if not diff <= atol:
        raise ParityError(f"The artefact disagrees with PyTorch: {parity}.")
    return parity


def save_state(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
    **info: Any,
) -> Path:
    """Save a training state as one safetensors file: tensors plus JSON metadata, no pickle.

    Tensors: ``model.<name>`` (the state dict), ``optimizer.<param index>.<key>`` (e.g. AdamW's
    ``exp_avg``), ``rng.torch`` and ``rng.loader`` (the global and the loader's generator states).
    Metadata: the optimizer's ``param_groups`` and any JSON-able ``info`` (epoch, recipe, ...).
    """
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    meta: dict[str, str] = {"info": json.dumps(info)}
    if optimizer is not None:
        opt = optimizer.state_dict()
        for index, slots in opt["state"].items():
            for key, value in slots.items():
                tensors[f"optimizer.{index}.{key}"] = torch.as_tensor(value).contiguous()
        meta["param_groups"] = json.dumps(opt["param_groups"])
    tensors["rng.torch"] = torch.get_rng_state()
    if generator is not None:
        tensors["rng.loader"] = generator.get_state()
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_state(
    path: str | os.PathLike,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Load a :func:`save_state` file into ``model`` (and ``optimizer``, ``generator``).

    The model must have the same architecture (names and shapes are checked). Restores the global
    torch RNG state too. Returns the saved ``info``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    from tlcourse.checkpoint import check_compatible

    tensors = load_file(str(path))
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
    weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    check_compatible({k: list(v.shape) for k, v in weights.items()}, model, f"The file {path}")
    model.load_state_dict(weights)
    if optimizer is not None:
        if "param_groups" not in meta:
            raise ValueError(f"{path} holds no optimizer state; save it with optimizer=.")
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, slot = key.split(".", 2)
                state.setdefault(int(index), {})[slot] = value
        optimizer.load_state_dict(
            {"state": state, "param_groups": json.loads(meta["param_groups"])}
        )
    torch.set_rng_state(tensors["rng.torch"])
    if generator is not None:
        generator.set_state(tensors["rng.loader"])
    return json.loads(meta.get("info", "{}"))


def _number(value: Any) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:.4f}"


def card_path(artefact: str | os.PathLike) -> Path:
    """Where the card of ``artefact`` lives: ``model.onnx`` -> ``model.onnx.md``, beside it."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + ".md")


def write_card(
    artefact: str | os.PathLike,
    *,
    title: str,
    data: str,
    recipe: str,
    metrics: Mapping[str, Any],
    preprocessing: str,
    base: str,
    licence: str,
    usage: str = "",
) -> Path:
    """Write the model card of ``artefact`` next to it (:func:`card_path`); return the card's path.

    The card records what a user needs before trusting the file: the data, the training recipe,
    the metrics (and on which split), the preprocessing the model expects, the base weights and
    their licence, and the file's size and SHA-256 (so the card provably describes this file).
    """
    artefact = Path(artefact)
    if not artefact.is_file():
        raise FileNotFoundError(f"No artefact at {artefact}: export the model before its card.")
    digest = hashlib.sha256(artefact.read_bytes()).hexdigest()
    lines = [
        f"# {title}",
        "",
        f"- file: `{artefact.name}` ({artefact.stat().st_size / 1e6:.2f} MB, sha256 `{digest}`)",
        f"- base weights: {base}",
        f"- licence of the base weights: {licence}",
        "",
        "## Data",
        data,
        "",
        "## Training recipe",
        recipe,
        "",
        "## Metrics",
        *[f"- {k}: {_number(v)}" for k, v in metrics.items()],
        "",
        "## Preprocessing",
        preprocessing,
    ]
    if usage:
        lines += ["", "## How to run it", usage]
    text = "\n".join(lines) + "\n"
    return atomic_write(card_path(artefact), lambda tmp: tmp.write_text(text, encoding="utf-8"))
