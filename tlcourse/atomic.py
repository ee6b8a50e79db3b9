"""The one home for safe writing: a file or a whole folder appears complete or not at all.

- :func:`atomic_write` writes one file through a temporary file beside it, then renames it.
- :func:`build_atomically` builds a folder in a temporary folder beside it, then swaps it in.

Either way a crash or an error leaves the previous version intact and no temporary file or
folder behind. Checkpoints, downloads, every dataset maker and the model families write
through here.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], *, suffix: str = ".tmp"
) -> Path:
    """Call ``write(tmp_path)`` then atomically move ``tmp_path`` to ``path``; return ``path``.

    If ``write`` raises (or the process dies), ``path`` keeps its previous content and the
    temporary file is removed. ``suffix`` ends the temporary file's name (for writers that
    insist on an extension, e.g. ``".keras"``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def build_atomically(
    dest: str | os.PathLike, build: Callable[[Path], None], *, replace: bool = False
) -> Path:
    """Call ``build(tmp_folder)``, then move the folder to ``dest``; return ``dest``.

    An existing ``dest`` is returned untouched unless ``replace``, in which case the finished
    folder takes its place (the old one is removed only after the new one is complete). If
    ``build`` raises, ``dest`` is as it was and the temporary folder is removed.
    """
    dest = Path(dest)
    if dest.is_dir() and not replace:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        build(tmp)
        _swap_in(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished folder ``tmp`` at ``dest`` (an old ``dest`` is moved aside, then removed)."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except OSError:
        if old is not None and not dest.exists():
            os.replace(old, dest)  # put the previous version back
        elif not dest.is_dir():  # not another process that finished first: a real error
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
