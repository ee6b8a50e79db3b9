"""Wall-clock latency, measured one way everywhere: warm-up calls, then the median of timed calls.

The median (not the mean) of several calls is robust to a busy machine's occasional stall;
:mod:`tlcourse.selection`, :mod:`tlcourse.compress` and :mod:`tlcourse.export` all time through it.

Introduced in notebooks/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def latency_ms(run: Callable[[], Any], *, repeats: int = 10, warmup: int = 2) -> float:
    """Median wall time of ``run()`` in milliseconds over ``repeats`` calls, after ``warmup`` calls.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"Need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}.")
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
