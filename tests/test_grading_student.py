"""`python -m tlcourse release --student DIR`: a class copy without the answers.

Nothing in the copy can compute a reference answer (no solutions, no solution markers, no
function whose body is a graded reference, no reference in the question sets), and the inline
checks in the copy still work, offline, against the recorded public results only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tlcourse.grading.student import audit, make_student_copy

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.name[:2] for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    dest = tmp_path_factory.mktemp("class") / "course"
    make_student_copy(ROOT, dest, log=lambda *_: None)
    return dest


def test_copy_has_the_course_and_no_solutions(copy):
    for part in ("notebooks", "exercises", "tlcourse", "scripts", "pyproject.toml"):
        assert (copy / part).exists(), part
    assert not (copy / "solutions").exists() and not (copy / "tests").exists()
    assert not list(copy.rglob("solutions")) and not (copy / ".git").exists()
    for chapter in CHAPTERS:
        assert (copy / "exercises" / "checks" / f"{chapter}.json").is_file()
    assert audit(copy, ROOT / "solutions") == []


def test_audit_catches_planted_answers(copy, tmp_path):
    planted = tmp_path / "planted"
    subprocess.run(["cp", "-r", str(copy), str(planted)], check=True)
    solution = nbformat.read(ROOT / "solutions" / "00_warmup.ipynb", as_version=4)
    nbformat.write(solution, str(planted / "notebooks" / "cheat.ipynb"))
    code = "\n\n".join(
        c.source for c in solution.cells if c.cell_type == "code" and "def accuracy" in c.source
    )
    code = code.replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    (planted / "tlcourse" / "helpers_extra.py").write_text(code.replace("accuracy", "acc2"))
    (planted / "solutions").mkdir()
    problems = "\n".join(audit(planted, ROOT / "solutions"))
    assert "cheat.ipynb: contains solution markers" in problems
    assert "helpers_extra.py: acc2() is the reference 00_warmup.ipynb:accuracy" in problems
    assert "a solutions folder" in problems


def test_the_old_package_references_would_be_caught(copy, tmp_path):
    """The package as it was before the references moved out fails the audit."""
    old = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--format=%H", "-n", "1", "--", "tlcourse/grading/sets/"],
        capture_output=True,
        text=True,
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", "-n", "1", "6cd9094~1"], capture_output=True, text=True
    )
    if old.returncode or commit.returncode or not commit.stdout.strip():
        pytest.skip("no git history here")
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit.stdout.strip()}:tlcourse/grading/sets/ch00.py"],
        capture_output=True,
        text=True,
    ).stdout
    folder = tmp_path / "old"
    (folder / "tlcourse").mkdir(parents=True)
    (folder / "tlcourse" / "ch00.py").write_text(text)
    assert any("is the reference 00_warmup.ipynb:" in p for p in audit(folder, ROOT / "solutions"))


def test_checks_work_in_the_copy_from_recorded_data_only(copy):
    """In the copy's own package (PYTHONPATH), from its exercises/ folder, offline: the
    untouched exercise says NOT YET, a right answer passes, a wrong one fails; the grader's
    reference loader finds nothing to load."""
    script = f"""
import tlcourse, sys
assert tlcourse.__file__.startswith({str(copy)!r}), tlcourse.__file__
from pathlib import Path
from tlcourse.grading.checks import evaluate
from tlcourse.grading import recorded
from tlcourse.grading.questions import question_set, Question
for chapter in {CHAPTERS!r}:
    data = recorded.load(chapter)
    for q in question_set(chapter):
        if isinstance(q, Question):
            assert q.id in data, q.id
def stub(*args):
    raise NotImplementedError()
print(evaluate("00.1", stub).message)
print(evaluate("00.1", lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)).message)
print(evaluate("00.1", lambda m: 0).message.splitlines()[0])
from tlcourse.grading.references import solution_path
try:
    solution_path(Path("00_warmup.ipynb").resolve())
except FileNotFoundError as err:
    print("NO REFERENCES:", str(err)[:60])
"""
    env = {k: v for k, v in os.environ.items() if k != "TLCOURSE_CHECKS"}
    env["PYTHONPATH"] = str(copy)
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=copy / "exercises",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("NOT YET 00.1")
    assert lines[1].startswith("PASSED 00.1")
    assert lines[2].startswith("FAILED 00.1")
    assert lines[3].startswith("NO REFERENCES")


def test_exercise_notebooks_in_the_copy_are_unsolved(copy):
    for path in (copy / "exercises").glob("*.ipynb"):
        text = json.loads(path.read_text())
        sources = ["".join(c["source"]) for c in text["cells"]]
        assert any("raise NotImplementedError()" in s for s in sources), path.name


def test_refuses_a_folder_that_is_not_empty_or_inside_the_course(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        make_student_copy(ROOT, tmp_path / "x", log=lambda *_: None)
    with pytest.raises(ValueError, match="outside"):
        make_student_copy(ROOT, ROOT / "exercises" / "class", log=lambda *_: None)
