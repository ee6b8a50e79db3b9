"""Where the course keeps its files: one cache folder, never the working directory.

The cache lives under ``$TLCOURSE_HOME`` if set, else in the user's cache folder
(``~/.cache/tlcourse`` on Linux). Files shipped inside the package (course backbones,
compressed speech clips, the text corpus) live under :func:`assets_dir`.

Introduced in notebooks/05_keras_and_fastai.ipynb.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_ENV = "TLCOURSE_HOME"


class CacheError(OSError):
    """The cache folder cannot be used; the message says how to fix it."""


def default_home() -> Path:
    """The cache folder used when ``$TLCOURSE_HOME`` is not set."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "tlcourse"


def home(create: bool = True) -> Path:
    """Return the cache root (``$TLCOURSE_HOME`` or :func:`default_home`), creating it if asked.

    Raises :class:`CacheError` with a fix when the folder cannot be created or written.
    """
    root = Path(os.environ.get(HOME_ENV) or default_home()).expanduser()
    if create:
        _ensure_writable(root)
    return root


def cache_dir(*parts: str, create: bool = True) -> Path:
    """A sub-folder of the cache, e.g. ``cache_dir("data", "glyphs")``."""
    folder = home(create=create).joinpath(*parts)
    if create:
        _ensure_writable(folder)
    return folder


def assets_dir() -> Path:
    """Read-only files shipped inside the package (weights, compressed data)."""
    return Path(__file__).resolve().parent / "assets"


def _ensure_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheError(
            f"Cannot create the course cache folder {folder} ({err.strerror}). "
            f"Point {HOME_ENV} at a folder you can write, e.g. `export {HOME_ENV}=$HOME/tlcourse-cache`."
        ) from err
    if not os.access(folder, os.W_OK):
        raise CacheError(
            f"The course cache folder {folder} is not writable. "
            f"Fix its permissions or point {HOME_ENV} at a folder you can write."
        )
