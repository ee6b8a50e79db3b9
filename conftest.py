"""Run-wide hooks for every pytest run in the repository (tests, notebooks, solutions).

Every notebook's run time is reported at the end, and the run fails if one exceeds
NOTEBOOK_BUDGET_S: the course promises < 3 minutes per notebook on a 2-core CPU.
"""

from __future__ import annotations

import os
from collections import defaultdict

NOTEBOOK_BUDGET_S = 180.0

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_configure(config):
    os.environ.setdefault("TLCOURSE_PROGRESS", "0")
    os.environ.setdefault("KERAS_BACKEND", "torch")


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _notebook_seconds:
        return
    terminalreporter.section(f"notebook run times (budget {NOTEBOOK_BUDGET_S:.0f} s each)")
    for path, seconds in sorted(_notebook_seconds.items()):
        flag = "OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else "ok"
        terminalreporter.write_line(f"{seconds:7.1f} s  {flag:<11}  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):7.1f} s  total")


def pytest_sessionfinish(session, exitstatus):
    over = [p for p, s in _notebook_seconds.items() if s > NOTEBOOK_BUDGET_S]
    if over and session.exitstatus == 0:
        session.exitstatus = 1
        print(f"\nFAILED: notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget: {', '.join(over)}")
