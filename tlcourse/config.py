"""Profiles (``quick`` | ``full``) and frozen, validated configs.

A profile changes data sources, sizes, epochs and weights, never the code path.
``quick`` (the default) runs offline on a laptop CPU in minutes; ``full`` is the real
thing on a GPU with internet.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields
from typing import Any, TypeVar

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


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run, checked on creation.

    Attributes:
        epochs: passes over the training data (>= 1).
        lr: peak learning rate (> 0).
        batch_size: examples per step (>= 1).
        weight_decay: decoupled weight decay (>= 0).
        seed: the seed passed to :func:`tlcourse.repro.seed_everything`.
    """

    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "lr": self.lr > 0,
            "batch_size": self.batch_size >= 1,
            "weight_decay": self.weight_decay >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"TrainConfig.{name}={getattr(self, name)!r} is out of range.")

    def replace(self, **changes: Any) -> TrainConfig:
        """Return a copy with ``changes`` applied (and validated)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"TrainConfig has no field(s) {sorted(unknown)}.")
        return type(self)(**{**self.__dict__, **changes})
