"""Look names up in a catalogue, and say which names were meant when one is unknown."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
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
