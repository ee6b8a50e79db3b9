"""Profiles (``quick`` | ``full``): which data, sizes and weights a run uses.

A profile changes data sources, sizes, epochs and weights, never the code path.
``quick`` (the default) runs offline on a laptop CPU in minutes; ``full`` is the real
thing on a GPU with internet.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import difflib
import os
from typing import TypeVar

PROFILES = ("quick", "full")
PROFILE_ENV = "TLCOURSE_PROFILE"

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is invalid; the message says how to fix it."""


def get_profile(name: str | None = None) -> str:
    """Return the active profile: ``name`` if given, else ``$TLCOURSE_PROFILE``, else ``quick``.

    Raises :class:`ConfigError` for an unknown name, with the closest valid one.
    """
    source = "argument" if name is not None else PROFILE_ENV
    value = name if name is not None else os.environ.get(PROFILE_ENV, "quick")
    value = value.strip().lower()
    if value not in PROFILES:
        hint = difflib.get_close_matches(value, PROFILES, n=1)
        guess = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ConfigError(
            f"Unknown profile {value!r} (from the {source}).{guess} "
            f"Use one of {', '.join(PROFILES)}, e.g. `export {PROFILE_ENV}=quick`."
        )
    return value


def choose(profile: str | None = None, *, quick: T, full: T) -> T:
    """Pick the value for the active profile: ``choose(quick=3, full=30)``."""
    return quick if get_profile(profile) == "quick" else full
