"""Quantization to int8 on the CPU: static PT2E for conv nets, torchao's dynamic int8 for linears.

* :func:`quantize_int8`: export, calibrate, convert (``X86InductorQuantizer``), then compile with
  inductor *freezing* (:func:`compile_for_cpu`); the compile time is paid inside the call.
* :func:`quantize_linear_int8`: ``torchao.quantization.quantize_`` with
  ``Int8DynamicActivationInt8WeightConfig`` on a copy.

``tlcourse.compress.measure`` measures the results (its weights file keeps only the tensors an
int8 graph uses). The deprecated ``torch.ao.quantization`` eager/FX flow is not used.

Introduced in notebooks/10_compression.ipynb.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from tlcourse.compress import batch_of


class Compiled(nn.Module):
    """An inference-only model compiled by inductor with *freezing* (weights folded as constants,
    int8 weights prepacked for oneDNN); each call runs without autograd, as freezing needs.

    ``graph_module`` is the uncompiled model (what :func:`weights_state` saves).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.graph_module = model
        self.__dict__["compiled"] = torch.compile(model)  # not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch._inductor.config as inductor

        with torch.no_grad(), inductor.patch(freezing=True):
            return self.compiled(x)

    def train(self, mode: bool = True) -> Compiled:
        """Inference only: the mode was fixed when the model was traced."""
        return self


def compile_for_cpu(model: nn.Module, example_inputs: torch.Tensor) -> Compiled:
    """``torch.compile`` ``model`` (eval mode) with freezing; compiled here, not at first use.

    The first calls pay for the compilation: one for batches of at least 16 (only the batch
    dimension is dynamic) and one for a batch of 1, which inductor specialises.
    """
    if not isinstance(model, torch.fx.GraphModule):
        model = model.eval()
    compiled = Compiled(model)
    batch = batch_of(example_inputs, max(16, len(example_inputs)))
    torch._dynamo.mark_dynamic(batch, 0)  # the batch size varies, the image size does not
    compiled(batch)
    compiled(example_inputs[:1])
    return compiled


def has_int8_dot_product() -> bool:
    """Whether this CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI or AMX)."""
    caps = torch.cpu.get_capabilities()
    return any(caps.get(k, False) for k in ("avx512_vnni", "avx_vnni", "amx_int8"))


def quantize_int8(
    model: nn.Module,
    calibration_batches: Iterable[torch.Tensor],
    *,
    compile: bool = True,
    reduce_range: bool | None = None,
) -> nn.Module:
    """Static int8 quantization of a conv net with PT2E, for x86 CPUs; compiled by default.

    1. ``torch.export`` the eval-mode model with a dynamic batch dimension;
    2. ``prepare_pt2e`` with the ``X86InductorQuantizer`` inserts observers;
    3. the ``calibration_batches`` (inputs ``(N, ...)``, ``N >= 2``) run through it: the observers
       record each activation's range, which fixes its int8 scale;
    4. ``convert_pt2e`` replaces weights by int8 ones (per channel) and adds (de)quantize steps;
    5. inductor compiles the graph into int8 kernels (:func:`compile_for_cpu`; the first-call
       compilation is paid inside this call).

    ``reduce_range`` quantizes activations to 7 bits instead of 8. Without int8 dot-product
    instructions, oneDNN's int8 kernels add pairs of u8 x s8 products in 16-bit registers, which
    overflow with full-range activations and cost accuracy; the default (``None``) reduces the
    range exactly on such CPUs (:func:`has_int8_dot_product` false), as PyTorch advises.

    Returns the :class:`Compiled` model, or the int8 ``GraphModule`` when ``compile=False``.
    """
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    batches = [b[0] if isinstance(b, list | tuple) else b for b in calibration_batches]
    if not batches or len(batches[0]) < 2:
        raise ValueError("Give at least one calibration batch of 2 or more inputs (N, ...).")
    batch = torch.export.Dim("batch")
    program = torch.export.export(model.eval(), (batches[0],), dynamic_shapes=({0: batch},))
    if reduce_range is None:
        reduce_range = not has_int8_dot_product()
    config = get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    quantizer = X86InductorQuantizer().set_global(config)
    prepared = prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for x in batches:
            prepared(x)
    int8 = move_exported_model_to_eval(convert_pt2e(prepared))
    return compile_for_cpu(int8, batches[0]) if compile else int8


def quantize_linear_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose ``nn.Linear`` layers compute in int8 (torchao, dynamic).

    Weights are stored as int8 with a scale per output row; each input is quantized on the fly
    (per token). Whether it runs faster depends on the CPU's int8 instructions (VNNI, AMX) and
    on ``torch.compile``; it is always about 4x smaller.
    """
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantized = copy.deepcopy(model).eval()
    quantize_(quantized, Int8DynamicActivationInt8WeightConfig())
    return quantized
