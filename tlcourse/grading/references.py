"""The reference answers, read from the instructor's solution notebook (never from the package).

The reference of question ``NN.k`` is the function its ``Question.function`` names, as defined in
``solutions/NN_topic.ipynb``. :func:`load_references` builds it without running the notebook:
from every code cell (check cells excepted) it keeps, in order,

* ``import`` / ``from ... import`` statements,
* ``def`` and ``class`` statements (helpers included),
* assignments without a call in them (``BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)``,
  ``os.environ["KERAS_BACKEND"] = "torch"``),

and executes them in a fresh namespace (an import or assignment that fails is skipped; a
reference that needs it is reported below). Everything else (loading data, training, plots) is skipped, so a graded function may use only those names: anything computed at the top level of
the notebook must reach it as an argument. :func:`load_references` says so, naming the function
and the name, when a reference uses a global it cannot define.

This runs in the instructor's process (``release`` and ``grade``): the solutions are trusted.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat

from tlcourse.grading.cells import FormatError, chapter_of, check_call
from tlcourse.grading.questions import Question, question_set

KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def solution_path(exercise: Path, solutions: Path | None = None) -> Path:
    """``solutions/NN_topic.ipynb`` for ``exercises/NN_topic.ipynb`` (or in ``solutions``)."""
    folder = solutions if solutions is not None else exercise.resolve().parent.parent / "solutions"
    path = folder / exercise.name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the grader reads the reference answers from the instructor's solution "
            f"notebook; pass --solutions FOLDER (the folder holding {exercise.name})."
        )
    return path


def reference_source(nb: nbformat.NotebookNode) -> str:
    """The statements of a solution notebook that define its functions (see the module doc)."""
    return "\n\n".join(_kept_statements(nb)) + "\n"


def _kept_statements(nb: nbformat.NotebookNode) -> list[str]:
    kept: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or check_call(cell.source):
            continue
        try:
            tree = ast.parse(_without_magics(cell.source))
        except SyntaxError as err:
            raise FormatError(
                f"code cell {index}: syntax error ({err.msg}, line {err.lineno})"
            ) from err
        for statement in tree.body:
            if isinstance(statement, KEPT) or (
                isinstance(statement, ast.Assign | ast.AnnAssign)
                and statement.value is not None
                and not any(isinstance(n, ast.Call) for n in ast.walk(statement.value))
            ):
                kept.append(ast.get_source_segment(_without_magics(cell.source), statement) or "")
    return kept


def _without_magics(source: str) -> str:
    """IPython magics and shell escapes (``%time``, ``!ls``) commented out, lines kept."""
    return "\n".join(
        "# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()
    )


def load_references(path: Path, functions: list[str] | None = None) -> dict[str, Callable]:
    """``{function name: reference}`` for the graded functions of solution notebook ``path``.

    ``functions`` defaults to those of the chapter's question set. Raises :class:`FormatError`
    when a function is missing or uses a name only the skipped statements would define.
    """
    nb = nbformat.read(path, as_version=4)
    if functions is None:
        chapter = chapter_of(path.name)
        functions = [q.function for q in question_set(chapter) if isinstance(q, Question)]
    statements = _kept_statements(nb)
    namespace: dict[str, Any] = {"__name__": f"tlcourse_reference_{path.stem}"}
    for statement in statements:
        code = compile(statement, f"<references of {path.name}>", "exec")
        try:
            exec(code, namespace)  # noqa: S102 - the instructor's own solution notebook
        except (ImportError, NameError, AttributeError, KeyError, IndexError):
            if not statement.lstrip().startswith(("def", "class", "@")):
                continue  # notebook state (``glyph = digits.images[0]``); checked below if used
            raise
    source = "\n\n".join(statements)
    missing = [f for f in functions if not callable(namespace.get(f))]
    if missing:
        raise FormatError(
            f"{path.name}: no top-level `def {missing[0]}(...)` (the reference of a question)."
        )
    for name in functions:
        _check_globals(path.name, name, source, namespace)
    return {name: namespace[name] for name in functions}


def _check_globals(notebook: str, name: str, source: str, namespace: dict) -> None:
    """Every global a reference (or a helper it calls) reads must exist in ``namespace``."""
    defs = {
        node.name: node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    seen, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen.add(current)
        for free in sorted(_free_names(defs[current])):
            if free in defs:
                todo.append(free)
            elif free not in namespace and not hasattr(builtins, free):
                raise FormatError(
                    f"{notebook}: {current}() reads the global {free!r}, which the grader cannot "
                    "define (it is computed at the top level of the notebook): pass it as an "
                    f"argument, or define it inside {current}()."
                )


def _free_names(function: ast.AST) -> set[str]:
    """Names read in ``function`` that it (or a nested scope) does not bind (approximate)."""
    loads, bound = set(), set()
    for node in ast.walk(function):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and (
            node is not function
        ):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loads - bound
