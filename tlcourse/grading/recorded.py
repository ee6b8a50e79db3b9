"""Recorded public results: what the references give on the public cases, stored as data.

``python -m tlcourse release`` runs each reference (from the solution notebook) on the public
cases of its question (seed :data:`~tlcourse.grading.questions.PUBLIC_SEED`) and writes the
observations to ``exercises/checks/NN.json`` + ``NN.safetensors`` (plain data, written and read
with :mod:`tlcourse.grading.wire`; no pickle, no code). The inline ``check()`` compares a learner's
function with these; the batch grader never uses them (it draws secret cases).

Where ``check()`` looks, first hit wins: ``$TLCOURSE_CHECKS``; ``./checks`` (a notebook run from
``exercises/``); ``../exercises/checks`` (from ``solutions/`` or ``notebooks/``); the
``exercises/checks`` folder beside the installed package (a course checkout or student copy).

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tlcourse.grading import wire
from tlcourse.grading.questions import PUBLIC_SEED, Question, question_set

FORMAT = 1
CHECKS_ENV = "TLCOURSE_CHECKS"


class RecordedError(LookupError):
    """No (or stale) recorded results for a chapter; the message says how to get them."""


def observe(question: Question, function: Callable, args: tuple) -> Any:
    """``question.observe(function(*args), args)`` on a private copy of the arguments."""
    mine = copy.deepcopy(args)
    return question.observe(function(*mine), mine)


def record(chapter: str, references: dict[str, Callable]) -> dict[str, Any]:
    """``{"format", "chapter", "seed", "questions": {qid: [observation per public case]}}``."""
    results = {}
    for q in question_set(chapter):
        if isinstance(q, Question):
            cases = q.cases(torch.Generator().manual_seed(PUBLIC_SEED))
            results[q.id] = [observe(q, references[q.function], args) for args in cases]
    return {"format": FORMAT, "chapter": chapter, "seed": PUBLIC_SEED, "questions": results}


def write(payload: dict[str, Any], folder: Path) -> None:
    """Write ``folder/NN.json`` + ``folder/NN.safetensors``."""
    folder.mkdir(parents=True, exist_ok=True)
    wire.dump(payload, folder / payload["chapter"])
    for suffix in (".json", ".safetensors"):  # readable by the class, like the notebooks
        (folder / f"{payload['chapter']}{suffix}").chmod(0o644)


def differs(payload: dict[str, Any], folder: Path) -> bool:
    """True if the recorded file is missing or disagrees with ``payload`` (tolerant floats)."""
    try:
        old = wire.load(folder / payload["chapter"])
    except (OSError, ValueError, RuntimeError):
        return True
    if not isinstance(old, dict) or set(old) != set(payload):
        return True
    questions = {q.id: q for q in question_set(payload["chapter"]) if isinstance(q, Question)}
    for key, value in payload.items():
        if key != "questions" and old[key] != value:
            return True
    new, before = payload["questions"], old["questions"]
    if not isinstance(before, dict) or set(new) != set(before):
        return True
    return any(
        len(before[qid]) != len(expected)
        or any(questions[qid].compare(b, e) for b, e in zip(before[qid], expected, strict=True))
        for qid, expected in new.items()
    )


def search_path() -> list[Path]:
    """Folders where :func:`load` looks for ``NN.json`` (see the module docstring)."""
    cwd = Path.cwd()
    folders = [Path(os.environ[CHECKS_ENV])] if os.environ.get(CHECKS_ENV) else []
    package_root = Path(__file__).resolve().parents[2]
    return folders + [
        cwd / "checks",
        cwd / "exercises" / "checks",
        cwd.parent / "exercises" / "checks",
        package_root / "exercises" / "checks",
    ]


def load(chapter: str) -> dict[str, list]:
    """``{qid: [recorded observation per public case]}`` of chapter ``NN``."""
    for folder in search_path():
        if (folder / f"{chapter}.json").is_file():
            try:
                data = wire.load(folder / chapter)
            except (OSError, ValueError, RuntimeError) as err:
                raise RecordedError(
                    f"{folder / chapter}.json is unreadable ({err}); get a fresh copy of the "
                    "exercises folder (instructors: `python -m tlcourse release`)."
                ) from err
            if isinstance(data, dict) and data.get("format") == FORMAT:
                return data["questions"]
    raise RecordedError(
        f"No recorded results for chapter {chapter} (checks/{chapter}.json): run the notebook "
        f"from the exercises/ folder of the course, or set {CHECKS_ENV}=/path/to/exercises/checks."
    )
