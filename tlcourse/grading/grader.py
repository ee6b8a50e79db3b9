"""``python -m tlcourse grade exercises/NN_topic.ipynb SUBMISSIONS_DIR --out grades.csv``.

Trust model: nothing a submission prints, writes or computes is believed except the raw values
its functions return. For each submission the grader

1. reads the notebook (never executing it in the grader's process) and keeps its code cells,
   minus the ``check(...)`` cells;
2. draws fresh cases from a secret seed, computes the expected observations with the reference
   functions read from the instructor's ``solutions/NN_topic.ipynb``
   (:mod:`tlcourse.grading.references`) **in the grader's process**, and writes the cases for the
   kernel (the package holds no reference answers, the public recorded results are never used);
3. runs the cells, then the learner's functions on those cases, in a sandbox
   (:mod:`tlcourse.grading.sandbox`: own process tree, time / memory / file limits, and where
   Linux allows it no network, a read-only view of everything but its scratch folder, and no
   view at all of ``solutions/``, ``.git``, the submissions folder or the rest of ``/tmp``);
4. reads back plain data only (JSON + safetensors, :mod:`tlcourse.grading.wire`) and compares in
   its own process with strict types; a question scores all its points or none;
5. without namespaces (where the package is writable), checks that the ``tlcourse.grading``
   files (what the kernel side of grading runs) are unchanged after each run: if not, that submission gets zero and a warning is printed.

Submissions: ``SUBMISSIONS_DIR/<student>.ipynb`` or ``SUBMISSIONS_DIR/<student>/.../NN_topic.ipynb``
(nbgrader's ``submitted/<student>/<assignment>/`` layout works). Symbolic links are never
followed and other files are not read: each gets a row that says so. Output: the gradebook CSV
(:mod:`tlcourse.grading.gradebook`: formula-safe cells; a ``run`` row per student says what
happened; open questions have empty points, to fill by hand) and ``<student>.md`` feedback files.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import torch

from tlcourse.grading import wire
from tlcourse.grading.cells import chapter_of
from tlcourse.grading.gradebook import Report, Row, write_feedback, write_gradebook
from tlcourse.grading.questions import PUBLIC_SEED, OpenQuestion, Question, question_set
from tlcourse.grading.recorded import observe
from tlcourse.grading.references import load_references, solution_path
from tlcourse.grading.sandbox import Limits, RunOutcome, namespaces_available, run_job
from tlcourse.grading.submissions import (
    Submission,
    changed_files,
    code_cells,
    find_submissions,
    open_answers,
    read_notebook,
    small_folder,
    snapshot,
)

PACKAGE_DIR = Path(__file__).resolve().parents[1]
REFERENCE_LOCK = threading.Lock()


# -------------------------------------------------------------------------------- one student


class Grader:
    """Grades submissions of one exercise notebook; see the module docstring."""

    def __init__(
        self,
        exercise: Path,
        limits: Limits | None = None,
        isolate: bool | None = None,
        seed: int | None = None,
        watch: Path | None = None,
        solutions: Path | None = None,
        submissions: Path | None = None,
    ) -> None:
        self.watch = watch or PACKAGE_DIR / "grading"  # checked for tampering without namespaces
        self.chapter = chapter_of(exercise.name)
        self.notebook_name = exercise.name
        self.questions = question_set(self.chapter)
        solution = solution_path(exercise, solutions)
        graded = [q for q in self.questions if isinstance(q, Question)]
        self.references = load_references(solution, [q.function for q in graded])
        self.limits = limits or Limits()
        self.isolate = namespaces_available() if isolate is None else isolate
        if seed == PUBLIC_SEED:
            raise ValueError(f"--seed {PUBLIC_SEED} draws the public cases: choose another seed")
        self.seed = seed
        repo = exercise.resolve().parent.parent
        hidden = [solution.resolve().parent, repo / ".git", submissions]
        self.hidden = [p.resolve() for p in hidden if p is not None and p.is_dir()]

    def grade(self, submission: Submission) -> Report:
        """Grade one submission; never raises for anything the submission does."""
        start = time.monotonic()
        report = Report(submission.student)
        try:
            if submission.problem:
                raise ValueError(submission.problem)
            nb = read_notebook(submission.path)
        except (OSError, ValueError) as err:
            self._all_zero(report, f"notebook not graded: {err}")
        else:
            report.answers = open_answers(nb, self.questions)
            self._grade_notebook(report, nb, submission.folder)
        report.seconds = time.monotonic() - start
        return report

    def _grade_notebook(self, report: Report, nb: nbformat.NotebookNode, folder: Path | None):
        root = Path(tempfile.mkdtemp(prefix="tlcgrade-"))
        nonce = secrets.token_hex(8)
        try:
            io_dir, expected = self._prepare(root, nonce, nb, folder)
            before = {} if self.isolate else snapshot(self.watch)
            outcome = run_job(io_dir / "job.json", root, nonce, self.limits, self.isolate)
            status = _read_status(io_dir)
            self._score(report, io_dir, expected, status, outcome)
            if not self.isolate:
                self._check_integrity(report, before)
        finally:
            if not os.environ.get("TLCOURSE_GRADE_KEEP"):
                shutil.rmtree(root, ignore_errors=True)

    def _prepare(self, root: Path, nonce: str, nb, folder: Path | None) -> tuple[Path, dict]:
        """The job for the sandbox; ``folder`` (the student's own folder, if any) is copied as
        the kernel's working folder, its links copied as links."""
        work, io_dir = root / "work", root / f"io-{nonce}"
        if folder is not None and folder.resolve() != Path.cwd().resolve() and small_folder(folder):
            shutil.copytree(folder, work, symlinks=True, ignore=shutil.ignore_patterns(".*"))
        work.mkdir(exist_ok=True)
        io_dir.mkdir()
        seed = self.seed if self.seed is not None else secrets.randbits(62)
        expected, graded = {}, [q for q in self.questions if isinstance(q, Question)]
        with REFERENCE_LOCK:  # one submission at a time (torch.export & co. are not thread-safe)
            for q in graded:
                cases = q.cases(torch.Generator().manual_seed(seed))
                torch.save(cases, io_dir / f"cases_{q.id}.pt")
                expected[q.id] = [observe(q, self.references[q.function], a) for a in cases]
        job = {
            "root": str(root),
            "work": str(work),
            "io": str(io_dir),
            "cells": code_cells(nb),
            "questions": [[q.id, q.function, q.observer_path] for q in graded],
            "hide": [str(p) for p in self.hidden],
            "private_tmp": tempfile.gettempdir(),
            "cell_timeout": self.limits.cell_timeout_s,
        }
        (io_dir / "job.json").write_text(json.dumps(job))
        return io_dir, expected

    def _score(
        self, report: Report, io_dir: Path, expected: dict, status: dict, outcome: RunOutcome
    ) -> None:
        report.notes += _run_notes(status, outcome)
        run_message = "; ".join(report.notes) or "ran"
        report.rows.append(Row(report.student, "run", "", "", run_message))
        for q in self.questions:
            if isinstance(q, OpenQuestion):
                report.rows.append(
                    Row(
                        report.student,
                        q.id,
                        "",
                        q.points,
                        "open question: grade by hand (answer in the feedback file)",
                    )
                )
                continue
            message = _question_verdict(q, io_dir, expected[q.id], status, outcome)
            report.rows.append(
                Row(
                    report.student,
                    q.id,
                    q.points if message is None else 0,
                    q.points,
                    message or f"passed all {len(expected[q.id])} cases",
                )
            )

    def _check_integrity(self, report: Report, before: dict[str, str]) -> None:
        """Without namespaces the package is writable: a change during the run costs all points
        (and the grader warns: re-install the package before grading on)."""
        changed = changed_files(self.watch, before)
        if changed:
            print(
                f"WARNING: tlcourse files changed while grading {report.student}: {changed[:5]}; "
                "check `git status` / re-install the package",
                file=sys.stderr,
            )
            report.withdraw(
                f"the tlcourse package changed during the run ({', '.join(changed[:3])}); "
                "all points withdrawn"
            )

    def _all_zero(self, report: Report, message: str) -> None:
        report.notes.append(message)
        report.rows.append(Row(report.student, "run", "", "", message))
        for q in self.questions:
            points = "" if isinstance(q, OpenQuestion) else 0
            report.rows.append(Row(report.student, q.id, points, q.points, message))


def _read_status(io_dir: Path) -> dict:
    try:
        status = json.loads((io_dir / "status.json").read_text()[:1_000_000])
        return status if isinstance(status, dict) else {}
    except (OSError, ValueError):
        return {}


def _run_notes(status: dict, outcome: RunOutcome) -> list[str]:
    """What happened to the run, from the grader's own view plus the sandbox's status file."""
    notes = []
    if outcome.timed_out:
        notes.append(f"stopped at the time limit ({outcome.wall_s:.0f} s)")
    cells = status.get("cells") if isinstance(status.get("cells"), list) else []
    for cell in cells[:50]:
        if isinstance(cell, dict) and cell.get("status") != "ok":
            notes.append(
                f"code cell {cell.get('index')}: {_clip(cell.get('ename'))} "
                f"{_clip(cell.get('evalue'), 80)}".strip()
            )
    if status.get("restarts"):
        notes.append(f"kernel restarted {_clip(status.get('restarts'))} time(s)")
    notes.append(f"{outcome.wall_s:.1f} s")
    return notes


def _clip(value: Any, n: int = 40) -> str:
    text = re.sub(r"\s+", " ", str(value or ""))
    return text if len(text) <= n else text[: n - 3] + "..."


def _question_verdict(
    q: Question, io_dir: Path, expected: list, status: dict, outcome: RunOutcome
) -> str | None:
    """``None`` if every case matches, else the reason for zero points."""
    try:
        result = wire.load(io_dir / f"result_{q.id}")
    except (OSError, ValueError, RuntimeError) as err:
        return _missing_reason(q, status, outcome, err)
    outcomes = result.get("outcomes") if isinstance(result, dict) else None
    if not isinstance(outcomes, list) or len(outcomes) != len(expected):
        return "malformed result"
    for number, (got, exp) in enumerate(zip(outcomes, expected, strict=True), start=1):
        message = _case_verdict(q, got, exp)
        if message:
            return f"case {number} of {len(expected)}: {message}"
    return None


def _case_verdict(q: Question, got: Any, expected: Any) -> str | None:
    if not isinstance(got, dict) or got.get("ok") is not True or "value" not in got:
        error = _clip(got.get("error") if isinstance(got, dict) else "no result", 120)
        if error.startswith("NotImplementedError"):
            return "not attempted (raise NotImplementedError() is still there)"
        return f"your function raised {error}"
    return _clip(q.compare(got["value"], expected), 200) or None


def _missing_reason(q: Question, status: dict, outcome: RunOutcome, err: Exception) -> str:
    entry = (
        status.get("questions", {}).get(q.id) if isinstance(status.get("questions"), dict) else None
    )
    if outcome.timed_out:
        return "no result: the notebook hit the time limit"
    if isinstance(entry, dict) and entry.get("ename"):
        return f"no result: {_clip(entry.get('ename'))} while running {q.function}"
    return f"no result ({type(err).__name__}); the kernel did not finish"


def grade_folder(
    exercise: Path,
    submissions: Path,
    out: Path,
    feedback: Path | None = None,
    limits: Limits | None = None,
    jobs: int = 1,
    isolate: bool | None = None,
    seed: int | None = None,
    log=print,
    watch: Path | None = None,
    solutions: Path | None = None,
) -> list[Report]:
    """Grade every submission in ``submissions``; write the CSV and feedback files."""
    grader = Grader(exercise, limits, isolate, seed, watch, solutions, submissions)
    found = find_submissions(submissions, exercise.name)
    log(
        f"grading {len(found)} submission(s) of {exercise.name}; sandbox: "
        f"{'namespaces + limits' if grader.isolate else 'limits only (no namespaces here)'}"
    )
    if not grader.isolate:
        log(
            "WARNING: without Linux user namespaces a submission can read every file you can "
            "(solutions/ included) and write to the package: grade on a machine with "
            "`unshare --user` for marks that count."
        )

    def one(submission: Submission) -> Report:
        report = grader.grade(submission)
        log(f"  {report.student}: {report.total} points in {report.seconds:.1f} s")
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(one, found))
    write_gradebook(reports, out)
    feedback = feedback or out.with_name(out.stem + "_feedback")
    graded = [q for q in grader.questions if isinstance(q, Question)]
    hints = {q.id: q.hint for q in graded}
    write_feedback(reports, feedback, hints, sum(q.points for q in graded))
    log(f"gradebook: {out}; feedback files: {feedback}/")
    return reports


def cli_main(argv: list[str]) -> int:
    """Entry point of ``python -m tlcourse grade EXERCISE SUBMISSIONS --out grades.csv``."""
    parser = argparse.ArgumentParser(
        prog="python -m tlcourse grade", description="Grade a folder of submitted notebooks."
    )
    parser.add_argument("exercise", type=Path, help="exercises/NN_topic.ipynb")
    parser.add_argument(
        "--solutions",
        type=Path,
        default=None,
        help="folder of the instructor's solution notebooks (default: ../solutions of EXERCISE)",
    )
    parser.add_argument(
        "submissions", type=Path, help="folder of <student>.ipynb or <student>/ folders"
    )
    parser.add_argument("--out", type=Path, default=Path("grades.csv"))
    parser.add_argument("--feedback", type=Path, default=None, help="default: <out>_feedback/")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell")
    parser.add_argument("--memory-mb", type=int, default=4096)
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    parser.add_argument("--seed", type=int, default=None, help="fix the secret seed (re-grading)")
    parser.add_argument("--no-namespaces", action="store_true", help="only rlimits, no unshare")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a folder of submissions", file=sys.stderr)
        return 1
    limits = Limits(args.timeout, args.cell_timeout, args.memory_mb)
    grade_folder(
        args.exercise,
        args.submissions,
        args.out,
        args.feedback,
        limits,
        args.jobs,
        False if args.no_namespaces else None,
        args.seed,
        solutions=args.solutions,
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
