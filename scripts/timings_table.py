"""Render the README's table of notebook run times from docs/timings.csv.

`make test` records every notebook's measured time in docs/timings.csv (the top-level
conftest.py does it: the CPU quick-profile column on a CPU run, the GPU full-profile column on
a GPU run with TLCOURSE_PROFILE=full). This script rewrites the table between the markers
<!-- timings:begin --> and <!-- timings:end --> in README.md.

usage: python scripts/timings_table.py [--check]   (--check: exit 1 if README.md is stale)
"""

from __future__ import annotations

import csv
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
CSV = ROOT / "docs" / "timings.csv"
README = ROOT / "README.md"
BEGIN, END = "<!-- timings:begin -->", "<!-- timings:end -->"
NOT_YET = "not yet measured"


def read_rows(path: pathlib.Path = CSV) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def render(rows: list[dict[str, str]]) -> str:
    lines = [
        "| notebook | CPU, quick profile (2 cores) | GPU, full profile |",
        "|---|---|---|",
    ]
    for row in rows:
        cpu = f"{float(row['cpu_quick_s']):.0f} s" if row["cpu_quick_s"] else NOT_YET
        gpu = f"{float(row['gpu_full_s']):.0f} s" if row["gpu_full_s"] else NOT_YET
        lines.append(f"| `{row['notebook']}` | {cpu} | {gpu} |")
    return "\n".join(lines)


def updated_readme(text: str, table: str) -> str:
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md lacks the markers {BEGIN} ... {END}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text()
    new = updated_readme(text, render(read_rows()))
    if "--check" in argv:
        if new != text:
            print("README.md's timing table is stale: run python scripts/timings_table.py")
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
