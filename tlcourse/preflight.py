"""``python -m tlcourse preflight``: get a machine ready for a class before the first notebook runs.

The doctor's checks first; then every dataset of the profile is built (quick) or downloaded and
verified (full), and every pretrained model of the profile is loaded once (weights read, shapes
checked). Everything lands in the course cache (``$TLCOURSE_HOME``), so the notebooks later find
it ready. A second run only verifies and is fast; it ends with "everything is ready".

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

from tlcourse.config import get_profile
from tlcourse.datasets import catalog
from tlcourse.datasets.info import dataset_root
from tlcourse.progress import progress_bar


@dataclass(frozen=True)
class Step:
    """One thing made ready: what, how it went (``built``, ``ready``, ``FAILED``), how long."""

    kind: str
    name: str
    status: str
    seconds: float
    detail: str = ""


def _timed(kind: str, name: str, action: Callable[[], str]) -> Step:
    """Run ``action`` (returns ``built`` or ``ready``); a failure becomes a ``FAILED`` step."""
    start = time.perf_counter()
    try:
        status, detail = action(), ""
    except Exception as err:  # noqa: BLE001 - every failure is reported, the rest still runs
        status, detail = "FAILED", f"{type(err).__name__}: {err}"
    return Step(kind, name, status, time.perf_counter() - start, detail)


def _prepare_dataset(name: str) -> str:
    existed = dataset_root(name).exists()
    catalog.prepare(name)
    return "ready" if existed else "built"


def _load_model(name: str) -> str:
    from tlcourse import zoo

    zoo.load_backbone(name)
    return "ready"


def dataset_steps(profile: str) -> list[Step]:
    """Build or verify every dataset of ``profile``.

    Introduced in notebooks/00_welcome.ipynb.
    """
    names = [n for n, i in sorted(catalog.all_datasets().items()) if i.profile == profile]
    return _run_all("data", names, _prepare_dataset)


def model_steps(profile: str) -> list[Step]:
    """Load every pretrained model of ``profile`` once (weights read and shape-checked).

    Introduced in notebooks/00_welcome.ipynb.
    """
    from tlcourse import zoo

    names = [n for n, e in sorted(zoo.entries().items()) if e.profile == profile]
    return _run_all("model", names, _load_model)


def _run_all(kind: str, names: list[str], action: Callable[[str], str]) -> list[Step]:
    steps = []
    with progress_bar(total=len(names), desc=kind) as bar:
        for name in names:
            steps.append(_timed(kind, name, lambda name=name: action(name)))
            bar.update()
    return steps


def report(steps: list[Step]) -> str:
    """The steps as aligned lines, each failure followed by its message."""
    width = max((len(s.name) for s in steps), default=0)
    lines = []
    for s in steps:
        lines.append(f"{s.status:<6}  {s.kind:<5}  {s.name:<{width}}  {s.seconds:6.1f} s")
        if s.detail:
            lines.append(f"        {s.detail}")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """Doctor, then data and models; exit status 1 if anything failed."""
    from tlcourse.doctor import report as doctor_report
    from tlcourse.doctor import run_checks

    parser = argparse.ArgumentParser(
        prog="python -m tlcourse preflight",
        description="Build or verify every dataset and pretrained model the course needs.",
    )
    parser.add_argument(
        "--profile", default=None, help="quick or full (default: $TLCOURSE_PROFILE)"
    )
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    start = time.perf_counter()
    checks = run_checks(profile)
    print(doctor_report(checks))
    steps = dataset_steps(profile) + model_steps(profile)
    print(report(steps))
    failed = [c.name for c in checks if not c.ok] + [s.name for s in steps if s.status == "FAILED"]
    seconds = time.perf_counter() - start
    if failed:
        print(f"\n{len(failed)} problem(s): {', '.join(failed)} ({seconds:.0f} s).")
        return 1
    print(f"\nEverything is ready for the {profile} profile ({seconds:.0f} s).")
    return 0
