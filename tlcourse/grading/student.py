"""``python -m tlcourse release --student DIR``: the course for a class, without the answers.

The copy holds what a learner needs: ``notebooks/``, ``exercises/`` (with the recorded public
results in ``exercises/checks/``), the data-makers in ``scripts/``, the ``tlcourse`` package and
the files to install it. It leaves out ``solutions/``, ``tests/``, the git history and anything
built or cached. :func:`audit` then proves the copy cannot compute a reference answer:

* no solutions folder, no solution markers (``### BEGIN SOLUTION``) in any file;
* no function in any ``.py`` file or notebook code cell whose body is a graded function's body
  from the solutions (compared as syntax trees, docstrings and names aside);
* no question set declares a reference.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import ast
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from tlcourse.grading.cells import BEGIN, END

INCLUDE = ("notebooks", "exercises", "scripts", "tlcourse")
INCLUDE_FILES = ("pyproject.toml", "requirements.lock", "README.md", "LICENSE", "Makefile")
SKIP = shutil.ignore_patterns(
    "__pycache__", "*.pyc", ".ipynb_checkpoints", ".*", "*.egg-info", "solutions"
)


def make_student_copy(
    repo: Path, dest: Path, solutions: Path | None = None, log: Callable = print
) -> list[str]:
    """Copy the course at ``repo`` to ``dest`` for a class and audit it; returns the problems
    (raises ``ValueError`` listing them, after removing nothing, if there are any)."""
    repo, dest = repo.resolve(), dest.resolve()
    solutions = (solutions or repo / "solutions").resolve()
    if dest == repo or repo in dest.parents and dest.parts[len(repo.parts)] in INCLUDE:
        raise ValueError(f"{dest}: choose a folder outside the course's own folders.")
    if dest.exists() and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty: give a new or empty folder for the class copy.")
    if not (repo / "exercises").is_dir():
        raise ValueError(f"{repo} has no exercises/: run this from the course folder.")
    dest.mkdir(parents=True, exist_ok=True)
    for name in INCLUDE:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, dest / name, ignore=SKIP)
    for name in INCLUDE_FILES:
        if (repo / name).is_file():
            shutil.copy2(repo / name, dest / name)
    problems = audit(dest, solutions)
    if problems:
        raise ValueError("the class copy is NOT safe to hand out:\n  " + "\n  ".join(problems))
    count = sum(1 for _ in dest.rglob("*") if _.is_file())
    log(f"class copy written to {dest} ({count} files, no solutions); audit: clean")
    return problems


def audit(copy: Path, solutions: Path) -> list[str]:
    """What in ``copy`` could give a reference answer away (empty list: nothing)."""
    problems = [f"{p}: a solutions folder" for p in copy.rglob("solutions") if p.is_dir()]
    bodies = reference_bodies(solutions)
    for path, source in _sources(copy):
        if _has_marker(source):
            problems.append(f"{path.relative_to(copy)}: contains solution markers ({BEGIN})")
        for name, reference in _matching_functions(source, bodies):
            problems.append(f"{path.relative_to(copy)}: {name}() is the reference {reference}")
    for path in (copy / "tlcourse" / "grading" / "sets").glob("ch*.py"):
        if "reference=" in path.read_text():
            problems.append(f"{path.relative_to(copy)}: a question declares a reference")
    return problems


def reference_bodies(solutions: Path) -> dict[str, str]:
    """``{normalised body: 'notebook:function'}`` of every function of the solution notebooks
    that is (or holds) a solution block: the graded functions and the helpers of an answer."""
    import nbformat

    bodies = {}
    for path in sorted(solutions.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or not _has_marker(cell.source):
                continue
            try:
                tree = ast.parse(_ipython_free(cell.source))
            except SyntaxError:
                continue
            lines = cell.source.splitlines()
            inside = _solution_lines(lines)
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and _body(node)
                    and inside & set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
                ):
                    bodies[_body(node)] = f"{path.name}:{node.name}"
    return bodies


def _solution_lines(lines: list[str]) -> set[int]:
    """1-based numbers of the lines between BEGIN and END SOLUTION markers."""
    inside, found = False, set()
    for number, line in enumerate(lines, start=1):
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside:
            found.add(number)
    return found


def _body(function: ast.AST) -> str:
    """The function's statements as a syntax-tree dump, without its docstring."""
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if not body or (len(body) == 1 and isinstance(body[0], ast.Raise | ast.Pass)):
        return ""  # a stub (raise NotImplementedError()) is no answer
    return "\n".join(ast.dump(statement) for statement in body)


def _matching_functions(source: str, bodies: dict[str, str]) -> Iterator[tuple[str, str]]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body(node) in bodies:
            yield node.name, bodies[_body(node)]


def _sources(folder: Path) -> Iterator[tuple[Path, str]]:
    """``(path, code)`` for every Python file and every notebook code cell under ``folder``."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".py":
            yield path, path.read_text(errors="replace")
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text(errors="replace")).get("cells", [])
            for cell in cells:
                source = "".join(cell.get("source", ""))
                if cell.get("cell_type") == "code":
                    yield path, _ipython_free(source)
                elif _has_marker(source):
                    yield path, BEGIN


def _has_marker(text: str) -> bool:
    return any(line.strip() == BEGIN for line in text.splitlines())


def _ipython_free(text: str) -> str:
    return "\n".join(
        "# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in text.splitlines()
    )
