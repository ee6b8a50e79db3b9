"""Progress bars that render in JupyterLab and stay quiet in tests and logs.

Introduced in notebooks/08_fusion_and_distillation.ipynb.
"""

from __future__ import annotations

import os
import sys

from tqdm.auto import tqdm

PROGRESS_ENV = "TLCOURSE_PROGRESS"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where tqdm draws a widget)."""
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell and hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_enabled(enabled: bool | None = None) -> bool:
    """Explicit choice, else ``$TLCOURSE_PROGRESS`` (0/1), else: in a notebook or a terminal."""
    if enabled is not None:
        return enabled
    env = os.environ.get(PROGRESS_ENV)
    if env is not None:
        return env.strip() not in ("0", "false", "no", "")
    return in_notebook() or sys.stderr.isatty()


def progress_bar(total: int | None = None, *, enabled: bool | None = None, **kwargs) -> tqdm:
    """A ``tqdm`` bar, disabled unless :func:`progress_enabled` says otherwise."""
    return tqdm(total=total, disable=not progress_enabled(enabled), leave=False, **kwargs)
