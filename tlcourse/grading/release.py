"""``python -m tlcourse release``: regenerate ``exercises/`` from ``solutions/``.

For each ``solutions/NN_topic.ipynb`` it

1. annotates the solution in place (cell metadata for tlcourse and nbgrader, derived from the
   content, points from the question registry) and strips its outputs;
2. writes ``exercises/NN_topic.ipynb``: every ``### BEGIN SOLUTION`` ... ``### END SOLUTION``
   block becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` (code) or
   ``YOUR ANSWER HERE`` (markdown model answers), outputs stripped;
3. records what the solution's functions (the references, :mod:`tlcourse.grading.references`)
   give on the public cases: ``exercises/checks/NN.json`` + ``NN.safetensors``, the data the
   learners' inline ``check()`` compares with (:mod:`tlcourse.grading.recorded`).

``--check`` writes nothing and exits 1 when a committed file differs from what release makes
(the test suite runs it). ``--student DIR`` writes a class copy without the solutions
(:mod:`tlcourse.grading.student`).

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import nbformat

from tlcourse.grading import recorded
from tlcourse.grading.cells import annotate, chapter_of, strip_solutions
from tlcourse.grading.references import load_references


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs, execution counts and run-time cell metadata (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
    return nb


def make_exercise(solution: nbformat.NotebookNode, source_name: str) -> nbformat.NotebookNode:
    """The exercise notebook for an annotated solution notebook."""
    exercise = copy.deepcopy(solution)
    for cell in exercise.cells:
        if "### BEGIN SOLUTION" in cell.source:
            cell.source = strip_solutions(cell.source, markdown=cell.cell_type == "markdown")
    exercise.metadata["tlcourse"] = {
        **solution.metadata.get("tlcourse", {}),
        "generated_from": f"solutions/{source_name}",
    }
    return exercise


def release_notebook(solution_path: Path) -> tuple[str, str]:
    """``(annotated solution text, exercise text)`` for one solution notebook."""
    nb = nbformat.read(solution_path, as_version=4)
    annotate(clean(nb), chapter_of(solution_path.name))
    exercise = make_exercise(nb, solution_path.name)
    return nbformat.writes(nb) + "\n", nbformat.writes(exercise) + "\n"


def record_notebook(solution_path: Path) -> dict:
    """The public results of the solution's functions (see :func:`recorded.record`)."""
    return recorded.record(chapter_of(solution_path.name), load_references(solution_path))


def _write_if_changed(path: Path, text: str, check_only: bool) -> bool:
    """True if ``path`` differs from ``text``; writes it atomically unless ``check_only``."""
    if path.exists() and path.read_text() == text:
        return False
    if not check_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return True


def cli_main(argv: list[str]) -> int:
    """Entry point of ``python -m tlcourse release [SOLUTION ...] [--check]``."""
    parser = argparse.ArgumentParser(
        prog="python -m tlcourse release", description=__doc__.split("\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: solutions/*.ipynb")
    parser.add_argument("--solutions", type=Path, default=Path("solutions"))
    parser.add_argument("--exercises", type=Path, default=Path("exercises"))
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")
    parser.add_argument(
        "--student",
        type=Path,
        metavar="DIR",
        help="write a class copy without solutions/ to DIR (after releasing)",
    )
    args = parser.parse_args(argv)
    if args.student is not None:
        from tlcourse.grading.student import make_student_copy

        make_student_copy(Path.cwd(), args.student, args.solutions, log=print)
        return 0
    paths = args.notebooks or sorted(args.solutions.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print(
            f"No solution notebooks found in {args.solutions}/ (expected NN_topic.ipynb).",
            file=sys.stderr,
        )
        return 1
    stale = []
    for path in paths:
        solution_text, exercise_text = release_notebook(path)
        targets = ((path, solution_text), (args.exercises / path.name, exercise_text))
        stale += [str(p) for p, text in targets if _write_if_changed(p, text, args.check)]
        payload, checks = record_notebook(path), args.exercises / "checks"
        if recorded.differs(payload, checks):
            stale.append(str(checks / f"{payload['chapter']}.json"))
            if not args.check:
                recorded.write(payload, checks)
    verb = "out of date" if args.check else "written"
    print(f"{len(paths)} notebook(s) released; {verb}: {', '.join(stale) or 'none'}")
    if args.check and stale:
        print("Run `python -m tlcourse release` and commit the result.", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
