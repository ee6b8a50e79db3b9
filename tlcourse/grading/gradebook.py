"""The gradebook: what the grader learned, written as data a spreadsheet will not run.

A :class:`Report` per submission holds its :class:`Row` s (``student, question, points, max,
message``); :func:`write_gradebook` writes them as CSV and :func:`feedback_text` as a markdown
file per student. Every text cell goes through :func:`neutralise`: a value that a spreadsheet
would read as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
gets a leading apostrophe, the OWASP advice for CSV injection, so ``=HYPERLINK(...)`` shows as
``'=HYPERLINK(...)`` — still readable, never run. Control characters become spaces.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = ("student", "question", "points", "max", "message")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class Row:
    """One gradebook line."""

    student: str
    question: str
    points: int | str
    max: int | str
    message: str


@dataclass
class Report:
    """Everything the grader learned about one submission."""

    student: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(r.points for r in self.rows if isinstance(r.points, int) and r.question != "run")

    def withdraw(self, note: str) -> None:
        """Zero every auto-graded row, saying why."""
        self.notes.append(note)
        for row in self.rows:
            if isinstance(row.points, int):
                row.points, row.message = 0, note


def neutralise(value: object) -> object:
    """``value`` safe for a spreadsheet cell: numbers unchanged, text never a formula."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = CONTROL.sub(" ", str(value))
    return "'" + text if text.startswith(FORMULA_START) else text


def safe_filename(student: str) -> str:
    """A file name for ``student``'s feedback (letters, digits, ``_.-``; never hidden)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", student).lstrip(".") or "student"


def write_gradebook(reports: list[Report], out: Path) -> None:
    """Write the CSV atomically (the folder is re-created if it vanished)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for report in reports:
        writer.writerows(
            [neutralise(v) for v in (r.student, r.question, r.points, r.max, r.message)]
            for r in report.rows
        )
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(buffer.getvalue())
    os.replace(tmp, out)


def feedback_text(report: Report, hints: dict[str, str], auto_max: int) -> str:
    """The per-student feedback file (markdown); ``hints`` by question id."""
    lines = [
        f"# Feedback for {neutralise(report.student)}",
        "",
        f"Auto-graded: **{report.total} / {auto_max}** points. Run: {'; '.join(report.notes)}.",
        "",
    ]
    for row in (r for r in report.rows if r.question != "run"):
        lines.append(
            f"- **{row.question}** {row.points if row.points != '' else '?'}/{row.max}: {row.message}"
        )
        if row.points == 0 and hints.get(row.question):
            lines.append(f"  - hint: {hints[row.question]}")
    for qid, text in report.answers.items():
        lines += ["", f"## Your answer to {qid} (graded by hand)", "", text]
    return "\n".join(lines) + "\n"


def write_feedback(reports: list[Report], folder: Path, hints: dict[str, str], auto_max: int):
    """One ``<student>.md`` per report in ``folder`` (names made safe and unique)."""
    folder.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for report in reports:
        name, n = safe_filename(report.student), 1
        while name.lower() in used:
            n += 1
            name = f"{safe_filename(report.student)}_{n}"
        used.add(name.lower())
        (folder / f"{name}.md").write_text(feedback_text(report, hints, auto_max))
