"""`python -m tlcourse release`: the committed exercises are exactly what release makes from the
solutions, solution text never reaches an exercise, and malformed solutions get clear errors."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tlcourse.grading import recorded
from tlcourse.grading.cells import FormatError, annotate, strip_solutions
from tlcourse.grading.questions import PUBLIC_SEED, Question, question_set
from tlcourse.grading.references import load_references, reference_source
from tlcourse.grading.release import cli_main, release_notebook

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_committed_exercises_and_solutions_are_up_to_date():
    """Fails when someone edits a solution without re-running `python -m tlcourse release`."""
    assert SOLUTIONS, "no solution notebooks"
    for path in SOLUTIONS:
        solution_text, exercise_text = release_notebook(path)
        assert path.read_text() == solution_text, f"run `python -m tlcourse release` ({path.name})"
        exercise = ROOT / "exercises" / path.name
        assert exercise.read_text() == exercise_text, (
            f"run `python -m tlcourse release` ({path.name})"
        )


def test_cli_check_mode_reports_up_to_date(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli_main(["--check"]) == 0
    assert "out of date: none" in capsys.readouterr().out


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_exercise_contains_no_solution(path):
    assert (ROOT / "exercises" / path.name).exists(), (
        f"run `python -m tlcourse release` ({path.name})"
    )
    solution = nbformat.read(path, as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / path.name, as_version=4)
    for sol_cell, ex_cell in zip(solution.cells, exercise.cells, strict=True):
        assert "BEGIN SOLUTION" not in ex_cell.source and "END SOLUTION" not in ex_cell.source
        if "### BEGIN SOLUTION" in sol_cell.source:
            hidden = sol_cell.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
            for line in (ln.strip() for ln in hidden.splitlines() if len(ln.strip()) > 12):
                assert line not in ex_cell.source, f"{path.name}: solution line leaked: {line}"
            stub = (
                "YOUR ANSWER HERE"
                if sol_cell.cell_type == "markdown"
                else "raise NotImplementedError()"
            )
            assert stub in ex_cell.source
        if ex_cell.cell_type == "code":
            assert ex_cell.outputs == [] and ex_cell.execution_count is None


def test_nbgrader_metadata_on_graded_cells():
    nb = nbformat.read(ROOT / "solutions" / "00_warmup.ipynb", as_version=4)
    meta = [c.metadata for c in nb.cells if "nbgrader" in c.metadata]
    checks = [m for m in meta if m["tlcourse"]["role"] == "check"]
    assert {m["nbgrader"]["grade_id"] for m in meta}.__len__() == len(meta)  # unique ids
    assert all(
        m["nbgrader"]["grade"] and m["nbgrader"]["locked"] and m["nbgrader"]["points"] > 0
        for m in checks
    )
    answer = [m for m in meta if m["tlcourse"]["role"] == "answer"]
    assert answer and answer[0]["nbgrader"] == {
        "grade": True,
        "grade_id": "q00_6_answer",
        "locked": False,
        "points": 2,
        "schema_version": 3,
        "solution": True,
    }


def test_strip_solutions_keeps_indentation_and_code_around():
    source = "def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n# after"
    assert strip_solutions(source, markdown=False) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n# after"
    )
    assert strip_solutions(
        "**A:**\n### BEGIN SOLUTION\nsecret\n### END SOLUTION", markdown=True
    ) == ("**A:**\nYOUR ANSWER HERE")


def _nb(*cells):
    return new_notebook(cells=list(cells))


SOLVED = new_code_cell(
    "def count_trainable(m):\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
)


@pytest.mark.parametrize(
    ("cells", "message"),
    [
        ([SOLVED], "no check"),
        ([SOLVED, new_code_cell('check("00.1", wrong_name)')], "must name count_trainable"),
        (
            [
                new_code_cell("### BEGIN SOLUTION\nx = 1"),
                new_code_cell('check("00.1", count_trainable)'),
            ],
            "without",
        ),
        ([SOLVED, new_code_cell('check("00.9", count_trainable)')], "not in the registry"),
        ([new_markdown_cell("### BEGIN SOLUTION\nx\n### END SOLUTION")], "open question"),
    ],
)
def test_malformed_solutions_get_clear_errors(cells, message):
    with pytest.raises(FormatError, match=message):
        annotate(_nb(*cells), "00")


# ------------------------------------------------------------- references and recorded results


def test_references_come_from_the_solution_notebook_only():
    """The graded functions are rebuilt from the solution's imports, defs and call-free
    constants; the notebook's other statements (data, training) never run."""
    nb = _nb(
        new_code_cell("import math\nLIMIT = 3\nexpensive = open('/nonexistent')  # never runs"),
        new_code_cell(
            "def count_trainable(m):\n    ### BEGIN SOLUTION\n    return math.floor(LIMIT)\n"
            "    ### END SOLUTION"
        ),
        new_code_cell('check("00.1", count_trainable)'),
    )
    source = reference_source(nb)
    assert "LIMIT = 3" in source and "open(" not in source and "check(" not in source


def test_a_reference_reading_notebook_state_gets_a_clear_error(tmp_path):
    nb = _nb(
        new_code_cell("import torch\nmodel = torch.nn.Linear(2, 2)"),
        new_code_cell(
            "def count_trainable(m):\n    ### BEGIN SOLUTION\n    return model.weight.numel()\n"
            "    ### END SOLUTION"
        ),
    )
    path = tmp_path / "00_warmup.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(
        FormatError, match=r"count_trainable\(\) reads the global 'model'.*argument"
    ):
        load_references(path, ["count_trainable"])
    with pytest.raises(FormatError, match=r"no top-level `def freeze_backbone"):
        load_references(path, ["freeze_backbone"])


def test_recorded_results_are_data_and_match_the_cases():
    """exercises/checks/NN.json + .safetensors: JSON and tensors only, one observation per
    public case of every auto-graded question."""
    for path in SOLUTIONS:
        chapter = path.name[:2]
        stem = ROOT / "exercises" / "checks" / chapter
        assert Path(f"{stem}.json").is_file(), f"run `python -m tlcourse release` ({path.name})"
        data = recorded.load(chapter)
        for q in question_set(chapter):
            if isinstance(q, Question):
                cases = q.cases(torch.Generator().manual_seed(PUBLIC_SEED))
                assert len(data[q.id]) == len(cases), q.id


def test_secret_cases_differ_from_the_public_ones():
    """A submission that replays the public answers must fail on the grader's cases: every
    question's cases depend on the seed."""
    for path in SOLUTIONS:
        for q in question_set(path.name[:2]):
            if isinstance(q, Question):
                public = q.cases(torch.Generator().manual_seed(PUBLIC_SEED))
                secret = q.cases(torch.Generator().manual_seed(12345))
                assert _fingerprint(public) != _fingerprint(secret), f"{q.id}: cases ignore gen"


def _fingerprint(cases) -> str:
    parts = []
    for args in cases:
        for arg in args:
            if isinstance(arg, torch.Tensor):
                parts.append(str(arg.flatten()[:50].tolist()))
            elif isinstance(arg, torch.nn.Module):
                parts.append(str([p.flatten()[:5].tolist() for p in arg.parameters()]))
                parts.append(str([p.requires_grad for p in arg.parameters()]))
                parts.append(repr(arg))
            else:
                parts.append(repr(arg))
    return "|".join(parts)
