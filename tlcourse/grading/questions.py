"""The question registry: how a chapter declares its graded questions.

A chapter's question set is a module ``tlcourse/grading/sets/chNN.py`` holding
``QUESTIONS = [Question(...), ..., OpenQuestion(...)]``. A :class:`Question` says

* ``id`` (``"04.2"``), ``points``, ``function`` (the name the learner defines), ``title``;
* ``cases(gen) -> list[tuple]``: the positional arguments of each test call, built from a
  ``torch.Generator`` (the public cases use seed :data:`PUBLIC_SEED`, the batch grader a secret
  one);
* ``observe(result, args)``: turns what a call returned (and the arguments, for functions
  that modify a model in place) into *plain data*: ``int``, ``float``, ``bool``, ``str``, ``None``,
  ``torch.Tensor`` and lists / dicts of them. Default: the returned value itself. It runs in
  the graded kernel, so it must be a module-level function (generic ones in
  :mod:`tlcourse.grading.observers`);
* ``compare(got, expected) -> str | None``: ``None`` when they match, else a short message that
  says what differs without giving the solution away. Default: :func:`same` (strict types,
  ``rtol=1e-5``, ``atol=1e-6`` for floats and tensors);
* ``hint``: one sentence shown when the answer is wrong.

There is no reference implementation here: the reference of question ``NN.k`` is the function
named ``function`` in ``solutions/NN_topic.ipynb`` (:mod:`tlcourse.grading.references`), which the
learner never receives. ``python -m tlcourse release`` records its observations on the public
cases as data (``exercises/checks/NN.json``), which the inline
:func:`tlcourse.grading.checks.check` compares with; the batch grader
(:mod:`tlcourse.grading.grader`) runs the references on fresh secret cases in its own process.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tlcourse.grading.observers import returned

ID_PATTERN = re.compile(r"^(\d\d)\.(\d+)$")
PUBLIC_SEED = 0  # the cases learners see (recorded at release); the grader never draws them
PLAIN_SCALARS = (bool, int, float, str, type(None))


class QuestionError(LookupError):
    """A question id or a question set is unknown or malformed; the message names the fix."""


@dataclass(frozen=True)
class Question:
    """One auto-graded question; see the module docstring for each field."""

    id: str
    function: str
    points: int
    title: str
    cases: Callable[[torch.Generator], list[tuple]]
    observe: Callable[[Any, tuple], Any] = returned
    compare: Callable[[Any, Any], str | None] = field(default=None)  # type: ignore[assignment]
    hint: str = ""

    def __post_init__(self) -> None:
        if not ID_PATTERN.match(self.id):
            raise QuestionError(f"Question id {self.id!r} must look like '04.2' (chapter.number).")
        if not self.function.isidentifier():
            raise QuestionError(f"Question {self.id}: function {self.function!r} is no identifier.")
        if self.compare is None:
            object.__setattr__(self, "compare", same)

    @property
    def observer_path(self) -> str:
        """``"module:qualname"`` of the observer, imported by the graded kernel."""
        return f"{self.observe.__module__}:{self.observe.__qualname__}"


@dataclass(frozen=True)
class OpenQuestion:
    """A question answered in prose, graded by a person; the model answer sits in the solution."""

    id: str
    points: int
    title: str

    def __post_init__(self) -> None:
        if not ID_PATTERN.match(self.id):
            raise QuestionError(f"Question id {self.id!r} must look like '04.5' (chapter.number).")


# --------------------------------------------------------------------------------- registry


def question_set(chapter: str) -> list[Question | OpenQuestion]:
    """All questions of chapter ``"NN"`` from ``tlcourse.grading.sets.chNN.QUESTIONS``."""
    try:
        module = importlib.import_module(f"tlcourse.grading.sets.ch{chapter}")
    except ModuleNotFoundError as err:
        raise QuestionError(
            f"No question set for chapter {chapter!r}: create tlcourse/grading/sets/ch{chapter}.py "
            "with a QUESTIONS list (see tlcourse/grading/questions.py)."
        ) from err
    questions = list(getattr(module, "QUESTIONS", []))
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids) or any(not i.startswith(f"{chapter}.") for i in ids):
        raise QuestionError(f"ch{chapter}.QUESTIONS needs unique ids starting with '{chapter}.'")
    return questions


def get_question(qid: str) -> Question | OpenQuestion:
    """The question with id ``qid`` (e.g. ``"00.1"``), with a clear error if it does not exist."""
    match = ID_PATTERN.match(str(qid))
    if not match:
        raise QuestionError(f"Question id {qid!r} must look like '00.1' (chapter.number).")
    for question in question_set(match.group(1)):
        if question.id == qid:
            return question
    raise QuestionError(f"Chapter {match.group(1)} has no question {qid!r}.")


# ------------------------------------------------------------------------------ comparisons


def same(got: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-6) -> str | None:
    """Strict structural comparison of plain data; ``None`` if equal, else what differs.

    Types must match exactly (a ``bool`` is not an ``int``; an ``int`` is accepted where a
    ``float`` is expected); tensors must have the same dtype and shape and be close.
    """
    return _same(got, expected, rtol, atol, "the result")


def _same(got: Any, exp: Any, rtol: float, atol: float, where: str) -> str | None:
    if isinstance(exp, torch.Tensor):
        return _same_tensor(got, exp, rtol, atol, where)
    if isinstance(exp, dict):
        return _same_dict(got, exp, rtol, atol, where)
    if isinstance(exp, list | tuple):
        return _same_list(got, exp, rtol, atol, where)
    if type(exp) is float:
        if type(got) not in (float, int) or not math.isclose(got, exp, rel_tol=rtol, abs_tol=atol):
            return f"{where}: expected {exp:.6g}, got {_show(got)}"
        return None
    if type(got) is not type(exp) or got != exp:
        return f"{where}: expected {_show(exp)}, got {_show(got)}"
    return None


def _same_tensor(got: Any, exp: torch.Tensor, rtol: float, atol: float, where: str) -> str | None:
    if type(got) is not torch.Tensor:
        return f"{where}: expected a torch.Tensor, got {_show(got)}"
    if got.dtype != exp.dtype:
        return f"{where}: expected dtype {exp.dtype}, got {got.dtype}"
    if got.shape != exp.shape:
        return f"{where}: expected shape {tuple(exp.shape)}, got {tuple(got.shape)}"
    if exp.dtype.is_floating_point:
        if not torch.allclose(got, exp, rtol=rtol, atol=atol, equal_nan=False):
            diff = (got - exp).abs().nan_to_num(float("inf")).max().item()
            return f"{where}: values differ (largest difference {diff:.3g})"
    elif not torch.equal(got, exp):
        return f"{where}: values differ in {int((got != exp).sum())} place(s)"
    return None


def _same_dict(got: Any, exp: dict, rtol: float, atol: float, where: str) -> str | None:
    if type(got) is not dict:
        return f"{where}: expected a dict, got {_show(got)}"
    missing, extra = sorted(set(exp) - set(got)), sorted(set(got) - set(exp))
    if missing or extra:
        return f"{where}: missing keys {missing[:5]}, unexpected keys {extra[:5]}"
    for key in exp:
        message = _same(got[key], exp[key], rtol, atol, f"{where}[{key!r}]")
        if message:
            return message
    return None


def _same_list(got: Any, exp: Sequence, rtol: float, atol: float, where: str) -> str | None:
    if type(got) not in (list, tuple):
        return f"{where}: expected a list, got {_show(got)}"
    if len(got) != len(exp):
        return f"{where}: expected {len(exp)} items, got {len(got)}"
    for i, (g, e) in enumerate(zip(got, exp, strict=True)):
        message = _same(g, e, rtol, atol, f"{where}[{i}]")
        if message:
            return message
    return None


def _show(value: Any) -> str:
    """A short, safe description of ``value`` for feedback messages."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if type(value) in PLAIN_SCALARS:
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return f"an object of type {type(value).__name__}"


# ------------------------------------------------------------------------------- messages


def describe_args(args: tuple) -> str:
    """A one-line description of a test case's arguments for feedback messages."""
    parts = []
    for arg in args:
        if isinstance(arg, torch.Tensor):
            parts.append(f"tensor{tuple(arg.shape)}")
        elif isinstance(arg, nn.Module):
            parts.append(f"{type(arg).__name__}({sum(p.numel() for p in arg.parameters())} params)")
        else:
            parts.append(_show(arg))
    return ", ".join(parts)
