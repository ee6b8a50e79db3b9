"""The batch grader, end to end: solutions score full marks, untouched and tampered exercises
score zero, and hostile submissions cost only their own points (see tests/hostile/).

One `python -m tlcourse grade` run grades all chapter-00 submissions together (2 in parallel)
to keep the file near two minutes on a 2-core CPU.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nbformat
import pytest
from hostile import BUILDERS, EXPECTED, FULL, ZERO, Context, write

from tlcourse.grading import grader
from tlcourse.grading.questions import OpenQuestion, Question, question_set
from tlcourse.grading.sandbox import Limits, namespaces_available

ROOT = Path(__file__).resolve().parents[1]
SOLUTION, EXERCISE = ROOT / "solutions" / "00_warmup.ipynb", ROOT / "exercises" / "00_warmup.ipynb"
OTHER_CHAPTERS = sorted(
    p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb") if p.name != SOLUTION.name
)
ISOLATED = namespaces_available()
NEEDS_ISOLATION = {"vandal"}  # without namespaces this one would really do damage
LIMITS = ["--timeout", "240", "--cell-timeout", "6", "--memory-mb", "3000", "--jobs", "2"]

pytestmark = pytest.mark.timeout(900)


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _gradebook(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``{student: {question: row}}`` from the CSV."""
    book: dict[str, dict[str, dict[str, str]]] = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["student", "question", "points", "max", "message"]
        for row in reader:
            book.setdefault(row["student"], {})[row["question"]] = row
    return book


def _points(book_rows: dict[str, dict[str, str]]) -> dict[str, int]:
    return {q: int(r["points"]) for q, r in book_rows.items() if q in FULL}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade solution, blank and every hostile submission of chapter 00 with the real CLI."""
    base = tmp_path_factory.mktemp("grading")
    subs, canary = base / "submissions", base / "canary.txt"
    subs.mkdir()
    canary.write_text("intact")
    package_file = Path(grader.__file__).resolve().parents[1] / "nets.py"
    mtime = package_file.stat().st_mtime_ns
    ctx = Context(str(canary), str(subs), os.getpid(), str(package_file))
    solution, exercise = _read(SOLUTION), _read(EXERCISE)
    write(solution, subs / "solution.ipynb")
    (subs / "blank").mkdir()  # the folder layout: <student>/<notebook>
    write(exercise, subs / "blank" / EXERCISE.name)
    for name, build in BUILDERS.items():
        if ISOLATED or name not in NEEDS_ISOLATION:
            write(build(solution, exercise, ctx), subs / f"{name}.ipynb")
    out = base / "out" / "grades.csv"
    assert grader.cli_main([str(EXERCISE), str(subs), "--out", str(out), *LIMITS]) == 0
    return {
        "book": _gradebook(out),
        "feedback": out.parent / "grades_feedback",
        "canary": canary,
        "subs": subs,
        "package_file": package_file,
        "mtime": mtime,
    }


def test_solution_full_marks_blank_zero(graded):
    book = graded["book"]
    assert _points(book["solution"]) == FULL, book["solution"]
    assert _points(book["blank"]) == ZERO
    assert all("not attempted" in book["blank"][q]["message"] for q in FULL)
    assert book["solution"]["00.6"]["points"] == "" and book["solution"]["00.6"]["max"] == "2"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_submission_gets_only_its_own_points(graded, name):
    if name in NEEDS_ISOLATION and not ISOLATED:
        pytest.skip("needs Linux user namespaces (unshare)")
    rows = graded["book"][name]
    assert _points(rows) == EXPECTED[name], {q: r["message"] for q, r in rows.items()}
    assert rows["run"]["message"]  # the run row says what happened


def test_hostile_messages_say_what_happened(graded):
    functions = graded["book"]["chaos_functions"]
    assert "Timeout" in functions["00.3"]["message"] or "time" in functions["00.3"]["message"]
    assert (
        "memory" in functions["00.4"]["message"].lower() or "alloc" in functions["00.4"]["message"]
    )
    assert "SystemExit" in functions["00.5"]["message"]
    assert "restarted" in graded["book"]["chaos_cells"]["run"]["message"]


@pytest.mark.skipif(not ISOLATED, reason="needs Linux user namespaces (unshare)")
def test_vandal_changed_nothing_outside_its_sandbox(graded):
    assert graded["canary"].read_text() == "intact"
    assert not Path(str(graded["canary"]) + ".new").exists()
    assert (graded["subs"] / "solution.ipynb").exists() and (graded["subs"] / "blank").is_dir()
    assert graded["package_file"].stat().st_mtime_ns == graded["mtime"]


def test_feedback_file_per_student(graded):
    files = {p.stem for p in graded["feedback"].glob("*.md")}
    assert files == set(graded["book"])
    text = (graded["feedback"] / "solution.md").read_text()
    assert "7 / 7" in text and "Start with feature extraction" in text
    assert "hint:" in (graded["feedback"] / "blank.md").read_text()


def test_grading_without_namespaces_still_isolates_points(tmp_path):
    """The fallback (rlimits + process group only) on the cases it can defend."""
    ctx = Context(str(tmp_path / "c"), str(tmp_path), os.getpid(), "")
    solution, exercise = _read(SOLUTION), _read(EXERCISE)
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("tamper_blank", "chaos_functions"):
        write(BUILDERS[name](solution, exercise, ctx), subs / f"{name}.ipynb")
    limits = Limits(timeout_s=240, cell_timeout_s=6, memory_mb=3000)
    reports = grader.grade_folder(
        EXERCISE,
        subs,
        tmp_path / "g.csv",
        limits=limits,
        jobs=2,
        isolate=False,
        log=lambda *_: None,
        watch=tmp_path / "subs",  # not the package: colleagues edit it while tests run
    )
    points = {
        r.student: {row.question: row.points for row in r.rows if row.question in FULL}
        for r in reports
    }
    assert points == {
        "tamper_blank": ZERO,
        "chaos_functions": EXPECTED["chaos_functions"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHER_CHAPTERS)
def test_every_chapter_solution_full_and_blank_zero(tmp_path, name):
    """CI proves each chapter's checks can fail: solution full marks, exercise zero."""
    subs = tmp_path / "subs"
    subs.mkdir()
    write(_read(ROOT / "solutions" / name), subs / "solution.ipynb")
    write(_read(ROOT / "exercises" / name), subs / "blank.ipynb")
    reports = grader.grade_folder(
        ROOT / "exercises" / name,
        subs,
        tmp_path / "g.csv",
        limits=Limits(timeout_s=300, cell_timeout_s=170),
        jobs=2,
        log=lambda *_: None,
    )
    graded_ids = {q.id: q.points for q in question_set(name[:2]) if isinstance(q, Question)}
    by_student = {r.student: {row.question: row for row in r.rows} for r in reports}
    for qid, points in graded_ids.items():
        assert by_student["solution"][qid].points == points, by_student["solution"][qid].message
        assert by_student["blank"][qid].points == 0
    assert any(isinstance(q, OpenQuestion) for q in question_set(name[:2])), "add an open question"


def test_unreadable_and_missing_notebooks_score_zero(tmp_path):
    subs = tmp_path / "subs"
    (subs / "nobody").mkdir(parents=True)
    (subs / "garbage.ipynb").write_text("{not json")
    reports = grader.grade_folder(EXERCISE, subs, tmp_path / "g.csv", log=lambda *_: None)
    for report in reports:
        assert report.total == 0
        assert {row.question for row in report.rows} >= set(FULL)
    assert "no .ipynb" in reports[1].rows[0].message and "readable" in reports[0].rows[0].message


def test_cli_rejects_a_missing_folder(tmp_path, capsys):
    assert grader.cli_main([str(EXERCISE), str(tmp_path / "nope")]) == 1
    assert "not a folder" in capsys.readouterr().err
