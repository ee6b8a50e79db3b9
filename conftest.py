"""Run-wide hooks for every pytest run in the repository (tests, notebooks, solutions).

Every notebook's run time is reported at the end, and the run fails if one exceeds
NOTEBOOK_BUDGET_S: the course promises < 3 minutes per notebook on a 2-core CPU. The times are
also recorded in docs/timings.csv (CPU column for a quick-profile run on a CPU, GPU column for a
full-profile run on a GPU), from which scripts/timings_table.py builds the README's table.
"""

from __future__ import annotations

import csv
import os
import pathlib
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


def _timing_column() -> str | None:
    """Which column of docs/timings.csv this run measures (None: neither)."""
    profile = os.environ.get("TLCOURSE_PROFILE", "quick")
    try:
        import torch

        on_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is always installed with the course
        on_gpu = False
    if profile == "quick" and not on_gpu:
        return "cpu_quick_s"
    if profile == "full" and on_gpu:
        return "gpu_full_s"
    return None


def record_times(seconds: dict[str, float], path: pathlib.Path) -> None:
    """Merge measured notebook times into the CSV (other rows and columns are kept); atomic."""
    column = _timing_column()
    if column is None or not seconds:
        return
    fields = ["notebook", "cpu_quick_s", "gpu_full_s"]
    rows = {}
    if path.exists():
        with path.open(newline="") as f:
            rows = {row["notebook"]: row for row in csv.DictReader(f)}
    for notebook, secs in seconds.items():
        rows.setdefault(notebook, dict.fromkeys(fields, "") | {"notebook": notebook})
        rows[notebook][column] = f"{secs:.1f}"
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))
    os.replace(tmp, path)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("TLCOURSE_RECORD_TIMES", "1") != "0":
        record_times(_notebook_seconds, pathlib.Path(__file__).parent / "docs" / "timings.csv")
    over = [p for p, s in _notebook_seconds.items() if s > NOTEBOOK_BUDGET_S]
    if over and session.exitstatus == 0:
        session.exitstatus = 1
        print(f"\nFAILED: notebook(s) over the {NOTEBOOK_BUDGET_S:.0f} s budget: {', '.join(over)}")
