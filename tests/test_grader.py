"""The batch grader, end to end: solutions score full marks, untouched and tampered exercises
score zero, and hostile submissions cost only their own points (see tests/hostile/).

One `python -m tlcourse grade` run grades all chapter-00 submissions together (2 in parallel)
to keep the file near two minutes on a 2-core CPU.
"""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from hostile import BUILDERS, EXPECTED, FULL, STEALERS, ZERO, Context, write

from tlcourse.grading import grader
from tlcourse.grading.questions import OpenQuestion, Question, question_set
from tlcourse.grading.sandbox import Limits, namespaces_available

ROOT = Path(__file__).resolve().parents[1]
SOLUTION, EXERCISE = ROOT / "solutions" / "00_warmup.ipynb", ROOT / "exercises" / "00_warmup.ipynb"
OTHER_CHAPTERS = sorted(
    p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb") if p.name != SOLUTION.name
)
ISOLATED = namespaces_available()
# without namespaces these would really do damage / really read the solutions
NEEDS_ISOLATION = {"vandal", "solutions_from_disk", "importlib_tricks"}
FORMULA_NAMES = ['=HYPERLINK("x.y","y")', "+1+1", "-2+3", "@SUM(A1)"]
LIMITS = ["--timeout", "240", "--cell-timeout", "20", "--memory-mb", "3000", "--jobs", "2"]

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
    package_file = Path(grader.__file__).resolve().parent / "__init__.py"  # nobody edits it
    mtime = package_file.stat().st_mtime_ns
    ctx = Context(str(canary), str(subs), os.getpid(), str(package_file), str(ROOT / "solutions"))
    solution, exercise = _read(SOLUTION), _read(EXERCISE)
    write(solution, subs / "solution.ipynb")
    (subs / "blank").mkdir()  # the folder layout: <student>/<notebook>
    write(exercise, subs / "blank" / EXERCISE.name)
    for name in FORMULA_NAMES:  # the gradebook must not turn these into formulas
        write(exercise, subs / f"{name}.ipynb")
    (subs / "linked.ipynb").symlink_to(subs / "solution.ipynb")  # a link to a full-marks file
    (subs / "linkdir").mkdir()
    (subs / "linkdir" / EXERCISE.name).symlink_to(SOLUTION)
    (subs / "essay.pdf").write_bytes(b"%PDF-1.4 not a notebook")
    for name, build in BUILDERS.items():
        if ISOLATED or name not in NEEDS_ISOLATION:
            write(build(solution, exercise, ctx), subs / f"{name}.ipynb")
    out = base / "out" / "grades.csv"
    assert grader.cli_main([str(EXERCISE), str(subs), "--out", str(out), *LIMITS]) == 0
    return {
        "csv": out.read_text(),
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
    if name in {f.__name__ for f in STEALERS}:  # zero because it found nothing, not a timeout
        assert "Timeout" not in rows["run"]["message"], rows["run"]["message"]


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


def test_formula_named_students_are_neutralised(graded):
    book = graded["book"]
    for name in FORMULA_NAMES:
        assert "'" + name in book, sorted(book)  # readable, with a leading apostrophe
        assert _points(book["'" + name]) == ZERO
    for line in graded["csv"].splitlines():
        cells = next(csv.reader([line]))
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), line


def test_links_and_other_files_get_an_error_row(graded):
    book = graded["book"]
    for student in ("linked", "linkdir"):
        assert _points(book[student]) == ZERO
        assert "symbolic link" in book[student]["run"]["message"]
    assert "not a notebook" in book["essay.pdf"]["run"]["message"]
    assert _points(book["essay.pdf"]) == ZERO
    assert _points(book["solution"]) == FULL  # the file the links point at keeps its points


def test_stealers_contain_no_import_statement():
    ctx = Context("c", "s", 1, "p", "sol")
    for build in STEALERS:
        cell = build(_read(SOLUTION), _read(EXERCISE), ctx).cells[-1].source
        tree = ast.parse(cell)
        assert not any(isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(tree))


@pytest.mark.parametrize("name", ["solutions_from_disk", "importlib_tricks"])
def test_stealers_are_real_attacks_outside_the_sandbox(tmp_path, name):
    """Control: run in a plain interpreter (no sandbox), the disk and importlib attacks do get
    the references; the sandbox is what stops them."""
    ctx = Context("c", str(tmp_path), 1, "p", str(ROOT / "solutions"))
    nb = BUILDERS[name](_read(SOLUTION), _read(EXERCISE), ctx)
    script = "from tlcourse.grading import check\n" + nb.cells[-1].source
    script += "\nprint('STOLEN', len(_stolen))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert "STOLEN 5" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


def test_feedback_file_per_student(graded):
    files = {p.stem for p in graded["feedback"].glob("*.md")}
    assert len(files) == len(graded["book"])
    text = (graded["feedback"] / "solution.md").read_text()
    assert "7 / 7" in text and "Start with feature extraction" in text
    assert "hint:" in (graded["feedback"] / "blank.md").read_text()


def test_grading_without_namespaces_still_isolates_points(tmp_path):
    """The fallback (rlimits + process group only) on the cases it can defend."""
    ctx = Context(str(tmp_path / "c"), str(tmp_path), os.getpid(), "", str(ROOT / "solutions"))
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
