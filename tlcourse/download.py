"""The only module of the package that touches the network: checksums, a cache, offline errors.

A :class:`Resource` names one file on the web with its checksum. :func:`fetch` puts it in the
cache (``$TLCOURSE_HOME/downloads``) at most once: it streams to a temporary file in the same
folder with a progress bar, checks the sha256 (or md5 where only md5 is published), then moves
it into place with ``os.replace``, so an interrupted download never leaves a corrupt file
behind. :func:`extract` unpacks a tar or zip archive safely (no absolute paths, no ``..``, no
links) and atomically. Offline and not cached, :class:`OfflineError` says exactly what to
download, its checksum and where to put it. Set ``TLCOURSE_OFFLINE=1`` to forbid any download.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tlcourse.atomic import atomic_write, build_atomically, write_text
from tlcourse.paths import cache_dir
from tlcourse.progress import progress_bar

OFFLINE_ENV = "TLCOURSE_OFFLINE"
CHUNK = 1 << 20  # 1 MiB
TIMEOUT_S = 60.0
USER_AGENT = "tlcourse (+https://github.com/; course data downloader)"
ARCHIVE_SUFFIXES = {".tar.gz": "tar", ".tgz": "tar", ".tar": "tar", ".zip": "zip"}


class DownloadError(OSError):
    """A file could not be fetched or unpacked; the message says how to fix it."""


class OfflineError(DownloadError):
    """Not in the cache and cannot be downloaded; the message says how to get it by hand."""


class ChecksumError(DownloadError):
    """A file's checksum does not match the published one; the bad file was deleted."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the destination (absolute path, ``..``, link)."""


class LayoutError(DownloadError):
    """An unpacked download does not have the files a loader expects."""


@dataclass(frozen=True)
class Resource:
    """One downloadable file and how to check it.

    Attributes:
        name: the file name in the cache, e.g. ``"images.tar.gz"``.
        url: where to download it.
        sha256: its published sha256 (hex); preferred.
        md5: its published md5 (hex), used only where no sha256 is published.
        size: its size in bytes, if known (for messages).
        mirrors: other URLs serving the same bytes, tried in order after ``url``.
        source: where the checksum was published (for the datasheet).
    """

    name: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        if not (self.sha256 or self.md5):
            raise ValueError(f"Resource {self.name!r} needs a sha256 (or an md5) to be checked.")
        if Path(self.name).name != self.name or self.name in ("", ".", ".."):
            raise ValueError(f"Resource name {self.name!r} must be a plain file name.")

    @property
    def algorithm(self) -> str:
        """``"sha256"`` when a sha256 is known, else ``"md5"``."""
        return "sha256" if self.sha256 else "md5"

    @property
    def checksum(self) -> str:
        """The expected hex digest for :attr:`algorithm` (lower case)."""
        return (self.sha256 or self.md5 or "").lower()

    @property
    def urls(self) -> tuple[str, ...]:
        """``url`` then the mirrors."""
        return (self.url, *self.mirrors)


def downloads_dir() -> Path:
    """The folder where downloaded files are cached: ``$TLCOURSE_HOME/downloads``."""
    return cache_dir("downloads")


def is_offline() -> bool:
    """True when ``$TLCOURSE_OFFLINE`` forbids downloads (``1``, ``true``, ``yes``)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks (works for files of many GB)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(resource: Resource, root: Path | None = None, *, progress: bool | None = None) -> Path:
    """Return the verified local path of ``resource``, downloading it once into ``root``.

    ``root`` defaults to :func:`downloads_dir`. A cached file is re-checked only when its size
    or modification time changed since it was verified. A cached file with a wrong checksum is
    deleted and downloaded again. Raises :class:`OfflineError` (offline and not cached),
    :class:`ChecksumError` (the download does not match) or :class:`DownloadError`.

    Introduced in notebooks/00_welcome.ipynb.
    """
    root = Path(root) if root is not None else downloads_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / resource.name
    stale = _check_cached(resource, path)
    if stale is None:
        return path
    if is_offline():
        raise OfflineError(_manual_message(resource, path, f"{OFFLINE_ENV} is set", stale))
    return _download_any(resource, path, progress, stale)


def _check_cached(resource: Resource, path: Path) -> str | None:
    """``None`` if ``path`` holds the right bytes, else why not (and delete a bad file)."""
    if not path.is_file():
        return "not in the cache"
    if _stamp_matches(path, resource):
        return None
    got = file_digest(path, resource.algorithm)
    if got == resource.checksum:
        _write_stamp(path, resource)
        return None
    path.unlink()
    _stamp_path(path).unlink(missing_ok=True)
    return (
        f"a cached file was there but its {resource.algorithm} was {got}, not "
        f"{resource.checksum}; that bad file was deleted"
    )


def _stamp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stamp_text(path: Path, resource: Resource) -> str:
    stat = path.stat()
    return f"{resource.algorithm}:{resource.checksum} {stat.st_size} {stat.st_mtime_ns}\n"


def _stamp_matches(path: Path, resource: Resource) -> bool:
    stamp = _stamp_path(path)
    return stamp.is_file() and stamp.read_text() == _stamp_text(path, resource)


def _write_stamp(path: Path, resource: Resource) -> None:
    # A read-only cache still works: the file is simply hashed again next time.
    with contextlib.suppress(OSError):
        write_text(_stamp_path(path), _stamp_text(path, resource))


def _download_any(resource: Resource, path: Path, progress: bool | None, stale: str) -> Path:
    """Try ``resource.urls`` in order; network failures end in :class:`OfflineError`."""
    failures = []
    for url in resource.urls:
        try:
            return _download(url, resource, path, progress)
        except (
            urllib.error.URLError,
            http.client.HTTPException,
            TimeoutError,
            ConnectionError,
        ) as err:
            reason = getattr(err, "reason", None) or err
            failures.append(f"{url}: {reason}")
    detail = "; ".join(failures)
    raise OfflineError(_manual_message(resource, path, f"the download failed ({detail})", stale))


def _download(url: str, resource: Resource, path: Path, progress: bool | None) -> Path:
    """Stream ``url`` to a temporary file beside ``path``, verify it, move it into place."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as out, urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
            got = _stream(resp, out, resource, progress)
        _verify_digest(got, resource, url, path)

    atomic_write(path, write)
    _write_stamp(path, resource)
    return path


def _stream(resp, out, resource: Resource, progress: bool | None) -> str:
    """Copy the response to ``out`` with a progress bar; return the hex digest."""
    length = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
    total = int(length) if length and length.isdigit() else resource.size
    digest, written = hashlib.new(resource.algorithm), 0
    with progress_bar(
        total, enabled=progress, unit="B", unit_scale=True, desc=resource.name
    ) as bar:
        for chunk in iter(lambda: resp.read(CHUNK), b""):
            out.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            bar.update(len(chunk))
    if length and length.isdigit() and written != int(length):
        raise DownloadError(
            f"The download of {resource.name} stopped after {written:,} of {int(length):,} bytes "
            "(connection lost). Nothing was kept; run the same command again."
        )
    return digest.hexdigest()


def _verify_digest(got: str, resource: Resource, url: str, path: Path) -> None:
    if got == resource.checksum:
        return
    raise ChecksumError(
        f"Checksum mismatch for {resource.name} downloaded from {url}: expected "
        f"{resource.algorithm} {resource.checksum}, got {got}. The bad file was deleted. "
        "This usually means a truncated or tampered download, or a file changed on the server. "
        f"Run again; if it persists, download it by hand, check it with `{resource.algorithm}sum`, "
        f"and put it at {path}."
    )


def _manual_message(resource: Resource, path: Path, why: str, stale: str) -> str:
    size = f" ({resource.size / 1e6:,.1f} MB)" if resource.size else ""
    urls = "\n".join(f"    {u}" for u in resource.urls)
    return (
        f"Cannot get {resource.name}{size}: {stale}, and {why}.\n"
        f"To continue, on a machine with internet download (from any one of)\n{urls}\n"
        f"  check that its {resource.algorithm} is {resource.checksum}\n"
        f"    (e.g. `{resource.algorithm}sum {resource.name}`),\n"
        f"  and copy it to\n    {path}\n"
        "then run this again. (The quick profile needs no downloads: "
        "`export TLCOURSE_PROFILE=quick`.)"
    )


def archive_kind(path: Path) -> str:
    """``"tar"`` or ``"zip"`` from the file name (``.tar.gz``, ``.tgz``, ``.tar``, ``.zip``)."""
    name = path.name.lower()
    for suffix, kind in ARCHIVE_SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    raise DownloadError(
        f"Cannot tell the archive type of {path.name}; expected one of {', '.join(ARCHIVE_SUFFIXES)}."
    )


def check_member(name: str, archive: Path) -> None:
    """Raise :class:`UnsafeArchiveError` if member ``name`` is absolute or climbs out (``..``)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and pure.parts[0].endswith(":")):
        raise UnsafeArchiveError(
            f"Refusing to unpack {archive.name}: member {name!r} would be written outside the "
            "destination folder. The archive is corrupt or malicious; delete it and download it "
            "again from the official URL."
        )


def _check_tar(tar: tarfile.TarFile, archive: Path) -> None:
    for member in tar.getmembers():
        check_member(member.name, archive)
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(
                f"Refusing to unpack {archive.name}: member {member.name!r} is a link or a special "
                "file. Delete the archive and download it again from the official URL."
            )


def _unpack(archive: Path, dest: Path) -> None:
    if archive_kind(archive) == "zip":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                check_member(name, archive)
            zf.extractall(dest)
        return
    with tarfile.open(archive) as tar:
        _check_tar(tar, archive)
        tar.extractall(dest, filter="data")


def extract(archive: Path, dest: Path) -> Path:
    """Unpack a tar(.gz) or zip ``archive`` into the folder ``dest``; return ``dest``.

    Safe: refuses absolute paths, ``..`` and links (:class:`UnsafeArchiveError`). Atomic (see
    :func:`build_atomically`): an existing ``dest`` is returned untouched.
    """
    archive = Path(archive)
    try:
        return build_atomically(dest, lambda tmp: _unpack(archive, tmp))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as err:
        raise DownloadError(
            f"Cannot unpack {archive.name} ({err}). Delete {archive} and run again."
        ) from err


def require_paths(root: Path, relpaths: Iterable[str], *, what: str, fix: str) -> None:
    """Raise :class:`LayoutError` naming every path of ``relpaths`` missing under ``root``."""
    missing = [p for p in relpaths if not (Path(root) / p).exists()]
    if missing:
        raise LayoutError(
            f"{what} at {root} does not have the expected layout: missing "
            f"{', '.join(missing)}. {fix}"
        )


def fetch_and_extract(
    resource: Resource, dest: Path, *, root: Path | None = None, progress: bool | None = None
) -> Path:
    """:func:`fetch` ``resource`` then :func:`extract` it into ``dest`` (once); return ``dest``."""
    dest = Path(dest)
    if dest.is_dir():
        return dest
    return extract(fetch(resource, root, progress=progress), dest)


def checksums_text(*resources: Resource) -> str:
    """One datasheet line per resource: name, checksum, where the checksum was published, URL."""
    return "\n".join(
        f"  {r.name}: {r.algorithm} {r.checksum} (from {r.source}); {r.url}" for r in resources
    )
