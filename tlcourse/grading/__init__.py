"""Graded exercises: inline checks for learners, ``release`` and ``grade`` for instructors.

``from tlcourse.grading import check`` is all an exercise notebook needs. How it fits together:

* :mod:`tlcourse.grading.questions` — the question registry (``sets/chNN.py`` declare questions);
* :mod:`tlcourse.grading.cells` — the notebook format (``### BEGIN/END SOLUTION``, check cells);
* :mod:`tlcourse.grading.checks` — ``check("00.1", my_function)``, inline feedback;
* :mod:`tlcourse.grading.release` — ``python -m tlcourse release``: solutions/ -> exercises/;
* :mod:`tlcourse.grading.grader` + :mod:`tlcourse.grading.sandbox` — ``python -m tlcourse grade``.

The import is lazy so that the sandbox helpers start without importing torch.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

from typing import Any

__all__ = ["check"]


def __getattr__(name: str) -> Any:
    if name == "check":
        from tlcourse.grading.checks import check

        return check
    raise AttributeError(f"module 'tlcourse.grading' has no attribute {name!r}")
