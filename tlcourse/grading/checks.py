"""Inline feedback for self-study: ``check("00.1", count_trainable)`` in an exercise notebook.

:func:`check` runs the learner's function on the public cases of the question (fixed seed, so the
feedback is reproducible), compares with the results recorded for those cases at release time
(:mod:`tlcourse.grading.recorded`: data next to the exercises, no reference code anywhere on the
learner's side) and prints one clear line: passed, or which case failed, what was expected and a
hint. It works offline.

Under nbgrader (``NBGRADER_EXECUTION`` set) or with ``TLCOURSE_CHECK_RAISE=1``, a failed check
also raises ``AssertionError``, so an nbgrader test cell that contains the check awards its
points only when the check passes.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tlcourse.grading import recorded
from tlcourse.grading.questions import (
    PUBLIC_SEED,
    OpenQuestion,
    Question,
    describe_args,
    get_question,
)


@dataclass(frozen=True)
class CheckResult:
    """Outcome of checking one question: ``passed`` and the message shown to the learner."""

    qid: str
    passed: bool
    message: str
    attempted: bool = True

    def __bool__(self) -> bool:
        return self.passed


def evaluate(qid: str, function: Callable[..., Any], expected: list | None = None) -> CheckResult:
    """Run ``function`` on the public cases of question ``qid`` and compare with ``expected``
    (default: the recorded results, :func:`tlcourse.grading.recorded.load`)."""
    question = get_question(qid)
    if isinstance(question, OpenQuestion):
        return CheckResult(qid, False, f"{qid} is an open question: your teacher reads it.", False)
    if not callable(function):
        return CheckResult(
            qid,
            False,
            f"{qid}: pass your function itself, e.g. "
            f"check({qid!r}, {question.function}), not {type(function).__name__}.",
        )
    try:
        expected = recorded.load(qid[:2]).get(qid) if expected is None else expected
    except recorded.RecordedError as err:
        return CheckResult(qid, False, f"CANNOT CHECK {qid}: {err}", False)
    cases = question.cases(torch.Generator().manual_seed(PUBLIC_SEED))
    if not isinstance(expected, list) or len(expected) != len(cases):
        return CheckResult(
            qid,
            False,
            f"CANNOT CHECK {qid}: the recorded results do not match this version of tlcourse; "
            "get the exercises/checks folder that came with it (instructors: "
            "`python -m tlcourse release`).",
            False,
        )
    for number, (args, exp) in enumerate(zip(cases, expected, strict=True), start=1):
        result = _run_case(question, function, args, exp, number, len(cases))
        if result is not None:
            return result
    return CheckResult(
        qid,
        True,
        f"PASSED {qid} {question.title}: all {len(cases)} cases "
        f"match ({question.points} point{'s' * (question.points != 1)}).",
    )


def _run_case(
    question: Question, function: Callable, args: tuple, expected: Any, number: int, total: int
) -> CheckResult | None:
    mine = copy.deepcopy(args)
    where = (
        f"FAILED {question.id} {question.title}, case {number} of {total} ({describe_args(args)})"
    )
    try:
        got = question.observe(function(*mine), mine)
    except NotImplementedError:
        return CheckResult(
            question.id,
            False,
            f"NOT YET {question.id} {question.title}: replace "
            "`raise NotImplementedError()` with your code.",
            attempted=False,
        )
    except Exception as err:  # noqa: BLE001 - report whatever the learner's code raised
        return CheckResult(
            question.id,
            False,
            f"{where}: your function raised {type(err).__name__}: {err}.{_hint(question)}",
        )
    difference = question.compare(got, expected)
    if difference:
        return CheckResult(question.id, False, f"{where}: {difference}.{_hint(question)}")
    return None


def _hint(question: Question) -> str:
    return f"\n  Hint: {question.hint}" if question.hint else ""


def check(qid: str, function: Callable[..., Any]) -> None:
    """Check your answer to question ``qid``, e.g. ``check("00.1", count_trainable)``; prints
    the verdict (and raises ``AssertionError`` on failure under nbgrader)."""
    result = evaluate(qid, function)
    print(result.message)
    if not result.passed and (
        os.environ.get("NBGRADER_EXECUTION") or os.environ.get("TLCOURSE_CHECK_RAISE") == "1"
    ):
        raise AssertionError(result.message)
