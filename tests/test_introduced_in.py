"""The map stays true: every "Introduced in" names a notebook that exists and is the FIRST one
(in notebooks/ order) to use the function, class or module it documents.

"Uses" means: a code cell of the notebook imports the module (``from tlcourse.x import module``
or ``tlcourse.x.module``) and, for a function or class, its name appears in a code cell (as a
word). A name no notebook uses only needs an existing notebook.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
INTRODUCED = re.compile(r"Introduced in ((?:notebooks|exercises|solutions)/[\w.-]+\.ipynb)")


@functools.cache
def code_of(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def imports(code: str, dotted: str) -> bool:
    """True if ``code`` imports module ``dotted`` (or names it in full)."""
    parent, _, name = dotted.rpartition(".")
    if re.search(rf"\b{re.escape(dotted)}\b", code):
        return True
    for names in re.findall(rf"from\s+{re.escape(parent)}\s+import\s+(\([^)]*\)|[^\n]*)", code):
        if re.search(rf"\b{name}\b", names):
            return True
    return False


def first_user(dotted: str, name: str | None) -> str | None:
    """The first notebook that imports module ``dotted`` (and, if given, uses ``name`` in its code)."""
    for notebook in NOTEBOOKS:
        code = code_of(notebook)
        if imports(code, dotted) and (name is None or re.search(rf"\b{name}\b", code)):
            return f"notebooks/{notebook.name}"
    return None


def claims() -> list[tuple[str, str, str, str | None]]:
    """(file, module, named notebook, function or class name) for every "Introduced in"."""
    found = []
    for path in sorted((ROOT / "tlcourse").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        dotted = rel.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        for ref in INTRODUCED.findall(ast.get_docstring(tree) or ""):
            found.append((rel, dotted, ref, None))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                for ref in INTRODUCED.findall(ast.get_docstring(node) or ""):
                    found.append((rel, dotted, ref, node.name))
    return found


def test_every_introduced_in_names_an_existing_notebook():
    missing = [
        f"{where} ({name or 'module'}): {ref}"
        for where, _, ref, name in claims()
        if not (ROOT / ref).is_file()
    ]
    assert not missing, "Introduced in a notebook that does not exist:\n" + "\n".join(missing)


def test_every_introduced_in_names_the_first_notebook_that_uses_it():
    if not NOTEBOOKS:
        pytest.skip("no notebooks")
    wrong = []
    for where, dotted, ref, name in claims():
        first = first_user(dotted, name)
        if first is not None and first != ref:
            wrong.append(f"{where} ({name or 'module'}): says {ref}, first used in {first}")
    assert not wrong, "Introduced in is not the first notebook that uses it:\n" + "\n".join(wrong)
