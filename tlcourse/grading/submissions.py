"""Submissions as the grader finds them: one per student, links never followed.

``SUBMISSIONS_DIR/<student>.ipynb`` or ``SUBMISSIONS_DIR/<student>/.../NN_topic.ipynb``; a
symbolic link, a file that is not a notebook or a folder without one becomes a
:class:`Submission` with a ``problem`` (an error row in the gradebook), and costs nobody else
anything. The notebook is read as data (never executed here), through ``O_NOFOLLOW`` and with a
size limit.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tlcourse.grading.cells import check_call
from tlcourse.grading.questions import OpenQuestion

MAX_NOTEBOOK_BYTES = 20_000_000
LINK = "is a symbolic link: not followed; submit the notebook file itself"


@dataclass(frozen=True)
class Submission:
    """One student's entry: the notebook to grade, or ``problem`` saying why there is none."""

    student: str
    path: Path | None
    problem: str | None = None
    folder: Path | None = None  # the student's own folder (copied as the kernel's cwd), if any


# ------------------------------------------------------------------------------ submissions


def find_submissions(folder: Path, notebook_name: str) -> list[Submission]:
    """One :class:`Submission` per ``<student>.ipynb`` file or ``<student>/`` folder; links and
    other files get a ``problem`` (hidden entries are skipped)."""
    found: dict[str, Submission] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        mode = entry.lstat().st_mode
        student = entry.stem if entry.suffix == ".ipynb" else entry.name
        if student in found:
            student = entry.name
        if stat.S_ISLNK(mode):
            found[student] = Submission(student, None, f"{entry.name} {LINK}")
        elif stat.S_ISDIR(mode):
            found[student] = _notebook_in(student, entry, notebook_name)
        elif stat.S_ISREG(mode) and entry.suffix == ".ipynb":
            found[student] = Submission(student, entry)
        else:
            found[student] = Submission(
                student,
                None,
                f"{entry.name} is not a notebook: submit an .ipynb file (or a folder holding one)",
            )
    return list(found.values())


def _notebook_in(student: str, folder: Path, notebook_name: str) -> Submission:
    """The student's notebook in ``folder`` (the exercise's name preferred); links not followed."""
    notebooks, links = [], []
    for here, dirs, files in os.walk(folder):  # does not follow linked folders
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(f for f in files if f.endswith(".ipynb")):
            (links if os.path.islink(os.path.join(here, name)) else notebooks).append(
                Path(here, name)
            )
    exact = [p for p in notebooks if p.name == notebook_name]
    if exact or notebooks:
        path = (exact or notebooks)[0]
        return Submission(student, path, folder=path.parent)
    if links:
        return Submission(student, None, f"{links[0].relative_to(folder.parent)} {LINK}")
    return Submission(student, None, "no .ipynb file found in the submission")


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The submission's code cells to run: all of them except the pure ``check(...)`` cells."""
    return [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and c.source.strip() and not check_call(c.source)
    ]


def open_answers(nb: nbformat.NotebookNode, questions: list) -> dict[str, str]:
    """The learner's text for each open question (the markdown cell after its header)."""
    answers = {}
    for question in (q for q in questions if isinstance(q, OpenQuestion)):
        texts = [
            c.source
            for c in nb.cells
            if c.cell_type == "markdown"
            and c.metadata.get("tlcourse", {}).get("question") == question.id
        ]
        answers[question.id] = (texts or ["(no answer cell found)"])[0][:5000]
    return answers


def read_notebook(path: Path | None) -> nbformat.NotebookNode:
    if path is None:
        raise ValueError("no .ipynb file found in the submission")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path.name} is not a regular file")
        data = handle.read(MAX_NOTEBOOK_BYTES + 1)
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"notebook larger than {MAX_NOTEBOOK_BYTES // 1_000_000} MB")
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:  # noqa: BLE001 - nbformat raises many kinds
        raise ValueError(f"not a readable notebook ({type(err).__name__})") from err


def small_folder(folder: Path, limit: int = 200_000_000) -> bool:
    total = 0
    for here, _, files in os.walk(folder):
        total += sum(os.lstat(os.path.join(here, f)).st_size for f in files)
        if total > limit:
            return False
    return True


# -------------------------------------------------------- integrity (runs without namespaces)


def snapshot(folder: Path) -> dict[str, str]:
    """``{path: sha256}`` of the package's source files, to detect tampering."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.py"))
    }


def changed_files(folder: Path, before: dict[str, str]) -> list[str]:
    """Names of files added, removed or modified since :func:`snapshot` (nothing is restored:
    re-install the package if this ever reports anything)."""
    after = snapshot(folder)
    return sorted(Path(p).name for p in set(before) | set(after) if before.get(p) != after.get(p))
