"""Catalogue helpers: look names up (suggesting the name meant when one is unknown), print tables."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TypeVar

V = TypeVar("V")


def lookup(catalogue: Mapping[str, V], name: str, kind: str, listing: str) -> V:
    """``catalogue[name]``; an unknown name raises ``KeyError`` with the closest names and ``listing``.

    Example: ``lookup(entries(), "glyphnet", "zoo model", "python -m tlcourse zoo list")``.
    """
    if name in catalogue:
        return catalogue[name]
    close = difflib.get_close_matches(name, list(catalogue), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise KeyError(f"Unknown {kind} {name!r}.{hint} See `{listing}` for all names.")


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows of strings as an aligned plain-text table with a rule under the header."""
    table = [tuple(header), *(tuple(r) for r in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
