"""The cell format of exercise notebooks: markers, roles and metadata, read from the content.

An author marks nothing by hand. In ``solutions/NN_topic.ipynb``:

* a **solution cell** is a code cell with ``### BEGIN SOLUTION`` ... ``### END SOLUTION``;
* a **check cell** is a code cell that only calls ``check("NN.k", function_name)``; it names the
  question of the solution cells above it (up to the previous check cell);
* an **answer cell** is a markdown cell with ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
  around the model answer of an open question; its question is the nearest ``Question NN.k``
  written in it or in a markdown cell above.

:func:`annotate` derives each cell's ``tlcourse`` and ``nbgrader`` metadata from that (points come
from the question registry) and checks the notebook against the registry.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat

from tlcourse.grading.questions import OpenQuestion, Question, QuestionError, question_set

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
ANSWER_STUB = "YOUR ANSWER HERE"
CHECK_LINE = re.compile(r"""^check\(\s*["'](\d\d\.\d+)["']\s*,\s*([A-Za-z_]\w*)\s*\)$""")
QUESTION_HEADER = re.compile(r"Question\s+(\d\d\.\d+)")
CHAPTER_FILE = re.compile(r"^(\d\d)_\w+\.ipynb$")


class FormatError(ValueError):
    """A solution notebook breaks the exercise format; the message names the cell and the fix."""


@dataclass(frozen=True)
class CellRole:
    """What a cell is for: ``role`` in solution | check | answer, for question ``qid``."""

    role: str
    qid: str | None


def chapter_of(filename: str) -> str:
    """``"04"`` for ``04_image_finetuning.ipynb``; a clear error for other names."""
    match = CHAPTER_FILE.match(filename)
    if not match:
        raise FormatError(
            f"{filename}: exercise notebooks are named NN_topic.ipynb, e.g. 04_probe.ipynb"
        )
    return match.group(1)


def check_call(source: str) -> tuple[str, str] | None:
    """``(qid, function)`` if the cell only calls ``check(...)`` (comments allowed), else None."""
    lines = [
        ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")
    ]
    matches = [CHECK_LINE.match(ln) for ln in lines]
    if len(lines) != 1 or not matches[0]:
        return None
    return matches[0].group(1), matches[0].group(2)


def roles(nb: nbformat.NotebookNode) -> list[CellRole | None]:
    """The role of every cell, derived from its content (see the module docstring)."""
    result: list[CellRole | None] = [None] * len(nb.cells)
    pending: list[int] = []
    header: str | None = None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            header = (QUESTION_HEADER.findall(cell.source) or [header])[-1]
            if BEGIN in cell.source:
                result[i] = CellRole("answer", header)
        elif cell.cell_type == "code" and BEGIN in cell.source:
            pending.append(i)
        elif cell.cell_type == "code" and check_call(cell.source):
            qid = check_call(cell.source)[0]
            result[i] = CellRole("check", qid)
            for j in pending:
                result[j] = CellRole("solution", qid)
            pending = []
    for j in pending:
        result[j] = CellRole("solution", None)
    return result


def annotate(nb: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """Write ``tlcourse`` + ``nbgrader`` metadata on every cell (in place) and validate.

    Raises :class:`FormatError` when a registered question has no check / solution / answer
    cell, a check names the wrong function, or markers are unbalanced.
    """
    questions = {q.id: q for q in question_set(chapter)}
    cell_roles = roles(nb)
    seen: dict[str, int] = {}
    for i, (cell, role) in enumerate(zip(nb.cells, cell_roles, strict=True)):
        cell.metadata.pop("tlcourse", None)
        cell.metadata.pop("nbgrader", None)
        _check_markers(cell.source, i)
        if role is not None:
            _annotate_cell(cell, role, questions, seen, i)
    _check_complete(questions, cell_roles)
    nb.metadata["tlcourse"] = {"chapter": chapter}
    return nb


def _annotate_cell(cell, role: CellRole, questions: dict, seen: dict, index: int) -> None:
    question = questions.get(role.qid) if role.qid else None
    if role.qid and question is None:
        raise FormatError(
            f"cell {index}: question {role.qid} is not in the registry; add it to "
            f"tlcourse/grading/sets/ch{role.qid[:2]}.py"
        )
    if role.role == "check" and (
        not isinstance(question, Question) or check_call(cell.source)[1] != question.function
    ):
        want = getattr(question, "function", "a function")
        raise FormatError(f"cell {index}: check({role.qid!r}, ...) must name {want}")
    if role.role == "answer" and not isinstance(question, OpenQuestion):
        raise FormatError(
            f"cell {index}: a markdown answer needs an open question header "
            "('Question NN.k') above it, registered as OpenQuestion"
        )
    key = f"{role.qid or 'ungraded'}_{role.role}".replace(".", "_")
    seen[key] = seen.get(key, 0) + 1
    grade_id = f"q{key}" + (f"_{seen[key]}" if seen[key] > 1 else "")
    graded = role.role in ("check", "answer")
    nbg = {
        "grade": graded,
        "grade_id": grade_id,
        "locked": role.role == "check",
        "schema_version": 3,
        "solution": role.role != "check",
    }
    if graded:
        nbg["points"] = question.points
    cell.metadata["nbgrader"] = nbg
    cell.metadata["tlcourse"] = {"question": role.qid, "role": role.role}


def _check_markers(source: str, index: int) -> None:
    depth = 0
    for line in source.splitlines():
        if line.strip() == BEGIN:
            depth += 1
        elif line.strip() == END:
            depth -= 1
        if depth not in (0, 1):
            raise FormatError(f"cell {index}: {BEGIN} / {END} are unbalanced or nested")
    if depth:
        raise FormatError(f"cell {index}: {BEGIN} without {END}")


def _check_complete(questions: dict, cell_roles: list[CellRole | None]) -> None:
    have = {(r.qid, r.role) for r in cell_roles if r is not None}
    for qid, q in questions.items():
        needs = ["check", "solution"] if isinstance(q, Question) else ["answer"]
        missing = [role for role in needs if (qid, role) not in have]
        if missing:
            raise FormatError(f"question {qid} has no {' / '.join(missing)} cell in the notebook")


def strip_solutions(source: str, markdown: bool) -> str:
    """Replace each BEGIN/END SOLUTION block by the stub (code) or ``YOUR ANSWER HERE``."""
    out: list[str] = []
    inside = False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out += [ANSWER_STUB] if markdown else [indent + stub for stub in CODE_STUB]
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def questions_in(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{qid: role}`` of the annotated graded questions in a notebook (from its metadata)."""
    found: dict[str, str] = {}
    for cell in nb.cells:
        meta = cell.metadata.get("tlcourse", {})
        if meta.get("role") in ("check", "answer"):
            found[meta["question"]] = meta["role"]
    return found


__all__ = ["FormatError", "QuestionError", "annotate", "chapter_of", "roles", "strip_solutions"]
