"""Chapter 13 (export and deployment): export to ONNX with a dynamic batch, prove parity with
PyTorch, fix a model whose export fails, and decide what ships with a model.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/13_export_and_deployment.ipynb.

Introduced in exercises/13_export_and_deployment.ipynb.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlcourse.grading.cases import bn_tiny_cnn
from tlcourse.grading.questions import OpenQuestion, Question, same


def _model(gen: torch.Generator) -> nn.Module:
    """A tiny CNN with BatchNorm, random width and classes, its statistics moved off (0, 1)."""
    classes = int(torch.randint(2, 6, (1,), generator=gen))
    width = int(torch.randint(2, 5, (1,), generator=gen))
    return bn_tiny_cnn(gen, classes, width)


def _size(gen: torch.Generator) -> int:
    return int(torch.randint(8, 17, (1,), generator=gen))


def within_1e4(got: Any, expected: Any) -> str | None:
    """Like ``same``, with the tolerance of two float32 runtimes (1e-4)."""
    return same(got, expected, rtol=1e-4, atol=1e-4)


# ------------------------------------------------------------------ 13.1 export to ONNX


def cases_export(gen: torch.Generator) -> list[tuple]:
    cases = []
    for _ in range(2):
        size = _size(gen)
        cases.append((_model(gen), torch.randn(2, 3, size, size, generator=gen)))
    return cases


def onnx_report(result: Any, args: tuple) -> dict[str, Any]:
    """The files in the folder of the returned path, and onnxruntime's outputs at batch 3 and 5."""
    if not isinstance(result, (str, os.PathLike)) or not Path(result).is_file():
        return {"error": f"expected the path of the .onnx file written, got {result!r}"}
    import onnxruntime as ort

    path = Path(result)
    report: dict[str, Any] = {"files": sorted(p.name for p in path.parent.iterdir())}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    for n in (3, 5):
        x = torch.randn(n, *args[1].shape[1:], generator=gen)
        try:
            out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            report[f"batch {n}"] = torch.from_numpy(out)
        except Exception as err:  # e.g. a batch size fixed at export time
            report[f"batch {n}"] = (
                f"onnxruntime could not run a batch of {n} ({type(err).__name__})"
            )
    return report


# ------------------------------------------------------------------ 13.2 prove parity


def cases_parity(gen: torch.Generator) -> list[tuple]:
    """A model and its export as bytes (the model handed over in train mode), then a model that
    differs from its export by a shifted head bias."""
    from tlcourse.export import to_onnx

    cases = []
    for shifted in (False, True):
        size = _size(gen)
        model = _model(gen)
        folder = Path(tempfile.mkdtemp(prefix="tlcourse-13-"))
        path = to_onnx(model, torch.randn(2, 3, size, size, generator=gen), folder / "m.onnx")
        onnx_bytes = path.read_bytes()
        shutil.rmtree(folder)
        if shifted:
            with torch.no_grad():
                model.head.bias += torch.rand(model.head.bias.shape, generator=gen) + 0.1
        images = torch.randn(
            int(torch.randint(3, 9, (1,), generator=gen)), 3, size, size, generator=gen
        )
        cases.append((model.train(), onnx_bytes, images))
    return cases


def close_difference(got: Any, expected: float) -> str | None:
    """A float; below 1e-4 when the expected is (float noise differs by runtime), else within 1 %."""
    if type(got) is not float:
        return f"the result: expected a Python float, got {type(got).__name__}"
    if expected < 1e-4:
        return None if 0 <= got < 1e-4 else f"the result: expected below 1e-4, got {got:.3g}"
    return (
        None
        if abs(got - expected) <= 0.01 * expected
        else (f"the result: expected about {expected:.4g}, got {got:.4g}")
    )


# ----------------------------------------------------------- 13.3 an export that fails


def cases_gate(gen: torch.Generator) -> list[tuple]:
    return [
        (torch.randn(int(torch.randint(2, 5, (1,), generator=gen)), 6, generator=gen) * 2,)
        for _ in range(3)
    ]


def program_outputs(result: Any, args: tuple) -> dict[str, Any]:
    """Outputs of the exported program on both sides of the branch and on another batch size."""
    if not isinstance(result, torch.export.ExportedProgram):
        return {"error": f"expected a torch.export.ExportedProgram, got {type(result).__name__}"}
    module, x = result.module(), args[0]
    peak = x.abs().amax()
    probes = {
        "peak below 1": x / (2 * peak),
        "peak above 1": 3 * x / peak,
        "another batch size": 3 * torch.cat([x, x[:1]]) / peak,
    }
    report: dict[str, Any] = {}
    for name, probe in probes.items():
        try:
            with torch.no_grad():
                report[name] = module(probe)
        except Exception as err:  # a value or a batch size frozen into the graph
            report[name] = f"the program failed ({type(err).__name__})"
    return report


QUESTIONS = [
    Question(
        id="13.1",
        function="export_onnx",
        points=2,
        title="export to one ONNX file with a dynamic batch",
        cases=cases_export,
        observe=onnx_report,
        compare=within_1e4,
        hint="export the eval-mode model with the dynamo exporter into a new folder from "
        "tempfile.mkdtemp(); mark dimension 0 of the input as dynamic (torch.export.Dim); keep the "
        "weights inside the file; return the file's path.",
    ),
    Question(
        id="13.2",
        function="max_logit_difference",
        points=2,
        title="prove parity between PyTorch and onnxruntime",
        cases=cases_parity,
        compare=close_difference,
        hint="the exported graph is the eval-mode model: compare with model.eval() under "
        "torch.no_grad(); ort.InferenceSession takes the bytes; feed it numpy arrays by input "
        "name; return a Python float.",
    ),
    Question(
        id="13.3",
        function="export_normalise",
        points=2,
        title="make a failing export work",
        cases=cases_gate,
        observe=program_outputs,
        compare=within_1e4,
        hint="the if depends on a tensor's value, which export cannot know: compute both results "
        "and choose with torch.where; keep the batch dimension dynamic.",
    ),
    OpenQuestion(id="13.4", points=2, title="what ships with a model"),
]
