"""Observers: turn what a learner's function returned into plain data the grader can compare.

An observer is ``observe(result, args) -> plain data`` (``int``, ``float``, ``bool``, ``str``,
``None``, ``torch.Tensor``, lists and dicts of them). The batch grader runs it *inside the
submission's kernel* (imported by ``module:qualname``), so it must be a module-level function;
generic ones live here, chapter-specific ones may sit in ``sets/chNN.py``. Keep them small and
structural: whatever they return is checked with strict types in the grader's process.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def returned(result: Any, args: tuple) -> Any:
    """The value the function returned (the default)."""
    return result


def trainable_flags(result: Any, args: tuple) -> dict[str, bool]:
    """``{parameter name: requires_grad}`` of ``args[0]`` after the call (in-place freezing)."""
    model = args[0]
    if not isinstance(model, nn.Module):
        return {}
    return {name: bool(p.requires_grad) for name, p in model.named_parameters()}


def image_classifier_report(result: Any, args: tuple) -> dict[str, Any]:
    """For functions returning a ``Classifier``: head type and sizes, whether the head trains,
    the logits shape on a ``(2, 3, 16, 16)`` probe, and the backbone's state (unchanged?)."""
    if not isinstance(result, nn.Module) or not isinstance(
        getattr(result, "head", None), nn.Module
    ):
        return {"error": f"expected the model back, got {type(result).__name__}"}
    head = result.head
    with torch.no_grad():
        logits = result.eval()(torch.zeros(2, 3, 16, 16))
    return {
        "head_type": type(head).__name__,
        "in_features": getattr(head, "in_features", None),
        "out_features": getattr(head, "out_features", None),
        "head_trainable": all(p.requires_grad for p in head.parameters()),
        "logits_shape": list(logits.shape),
        "backbone": dict(result.backbone.state_dict()),
    }
