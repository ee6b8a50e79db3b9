"""tlcourse.download: checksums, cache, atomic writes, offline errors, safe extraction.

Everything is served from 127.0.0.1 or file:// URLs; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from tlcourse import download
from tlcourse.download import (
    ChecksumError,
    DownloadError,
    LayoutError,
    OfflineError,
    Resource,
    UnsafeArchiveError,
    extract,
    fetch,
    fetch_and_extract,
    require_paths,
)

from fakes import serve, serve_handler, write_tar, write_zip

PAYLOAD = b"tlcourse test payload\n" * 1000


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(download.OFFLINE_ENV, raising=False)


@pytest.fixture
def served(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "payload.bin").write_bytes(PAYLOAD)
    with serve(site) as (base, requests):
        yield base, requests


def _resource(url: str, data: bytes = PAYLOAD, **kw) -> Resource:
    return Resource(name="payload.bin", url=url, sha256=hashlib.sha256(data).hexdigest(), **kw)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fetch_downloads_verifies_and_caches(served, tmp_path):
    base, requests = served
    res = _resource(f"{base}/payload.bin")
    path = fetch(res, progress=False)
    assert path == tmp_path / "home" / "downloads" / "payload.bin"
    assert path.read_bytes() == PAYLOAD
    assert _leftovers(path.parent) == []
    assert fetch(res, progress=False) == path  # cached: no second request
    assert requests == ["/payload.bin"]


def test_cached_file_is_used_offline(served, monkeypatch):
    base, _ = served
    res = _resource(f"{base}/payload.bin")
    fetch(res, progress=False)
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    assert fetch(res, progress=False).read_bytes() == PAYLOAD


def test_file_url_and_md5(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    res = Resource(name="payload.bin", url=src.as_uri(), md5=hashlib.md5(PAYLOAD).hexdigest())
    assert res.algorithm == "md5"
    assert fetch(res, tmp_path / "dl", progress=False).read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_download(served):
    base, _ = served
    res = Resource(name="payload.bin", url=f"{base}/payload.bin", sha256="0" * 64)
    with pytest.raises(ChecksumError) as err:
        fetch(res, progress=False)
    msg = str(err.value)
    assert "0" * 64 in msg and hashlib.sha256(PAYLOAD).hexdigest() in msg
    assert "deleted" in msg
    folder = download.downloads_dir()
    assert not (folder / "payload.bin").exists() and _leftovers(folder) == []


def test_corrupt_cached_file_is_replaced(served):
    base, requests = served
    res = _resource(f"{base}/payload.bin")
    target = download.downloads_dir() / "payload.bin"
    target.write_bytes(b"truncated")
    assert fetch(res, progress=False).read_bytes() == PAYLOAD
    assert requests == ["/payload.bin"]


def test_corrupt_cached_file_offline_says_so(monkeypatch):
    target = download.downloads_dir() / "payload.bin"
    target.write_bytes(b"truncated")
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    with pytest.raises(OfflineError, match="bad file was deleted"):
        fetch(_resource("http://127.0.0.1:9/payload.bin"), progress=False)
    assert not target.exists()


def test_offline_error_says_what_to_download_and_where():
    url = f"http://127.0.0.1:{_closed_port()}/payload.bin"
    res = _resource(url, size=22_000)
    with pytest.raises(OfflineError) as err:
        fetch(res, progress=False)
    msg = str(err.value)
    assert url in msg and res.sha256 in msg and "sha256sum" in msg
    assert str(download.downloads_dir() / "payload.bin") in msg
    assert _leftovers(download.downloads_dir()) == []


def test_offline_env_forbids_any_download(monkeypatch):
    monkeypatch.setenv(download.OFFLINE_ENV, "yes")
    monkeypatch.setattr(download, "_download", pytest.fail)  # must not be reached
    with pytest.raises(OfflineError, match=download.OFFLINE_ENV):
        fetch(_resource("http://127.0.0.1:9/payload.bin"), progress=False)


def test_mirror_is_tried_after_a_dead_url(served):
    base, _ = served
    dead = f"http://127.0.0.1:{_closed_port()}/payload.bin"
    res = _resource(dead, mirrors=(f"{base}/payload.bin",))
    assert fetch(res, progress=False).read_bytes() == PAYLOAD


class _Truncating(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


def test_truncated_download_leaves_no_file():
    with serve_handler(_Truncating) as base:
        res = _resource(f"{base}/payload.bin")
        with pytest.raises(DownloadError, match="stopped after"):
            fetch(res, progress=False)
    folder = download.downloads_dir()
    assert not (folder / "payload.bin").exists() and _leftovers(folder) == []


def test_interrupted_download_leaves_no_file(served, monkeypatch):
    base, _ = served

    def interrupted(resp, out, resource, progress):
        out.write(resp.read(100))
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "_stream", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch(_resource(f"{base}/payload.bin"), progress=False)
    folder = download.downloads_dir()
    assert not (folder / "payload.bin").exists() and _leftovers(folder) == []


def test_resource_needs_a_checksum_and_a_plain_name():
    with pytest.raises(ValueError, match="sha256"):
        Resource(name="a.zip", url="http://x/a.zip")
    with pytest.raises(ValueError, match="plain file name"):
        Resource(name="../a.zip", url="http://x/a.zip", sha256="0" * 64)


def test_extract_tar_and_zip(tmp_path):
    files = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    for archive in (write_tar(tmp_path / "x.tar.gz", files), write_zip(tmp_path / "x.zip", files)):
        out = extract(archive, tmp_path / f"out-{archive.name}")
        assert (out / "top" / "sub" / "b.txt").read_bytes() == b"b"
        assert extract(archive, out) == out  # already there: untouched


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "a/../../evil.txt"])
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_extract_rejects_path_traversal(tmp_path, member, kind):
    archive = tmp_path / f"bad.{kind}"
    writer = write_tar if kind == "tar.gz" else _write_zip_raw
    writer(archive, {"ok.txt": b"ok", member: b"evil"})
    dest = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match="outside the destination"):
        extract(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "deep" / "evil.txt").exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # no half-unpacked temp folder


def _write_zip_raw(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps the name as given
    return path


def test_extract_rejects_links(tmp_path):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("innocent")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info, io.BytesIO())
    with pytest.raises(UnsafeArchiveError, match="link"):
        extract(archive, tmp_path / "out")


def test_extract_corrupt_archive_is_a_clear_error(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"not a zip")
    with pytest.raises(DownloadError, match="Cannot unpack broken.zip"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_fetch_and_extract_end_to_end(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    archive = write_tar(site / "data.tar.gz", {"data/x.txt": b"x"})
    with serve(site) as (base, _):
        res = Resource(
            name="data.tar.gz",
            url=f"{base}/data.tar.gz",
            sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
        )
        out = fetch_and_extract(res, tmp_path / "unpacked", progress=False)
    assert (out / "data" / "x.txt").read_bytes() == b"x"


def test_require_paths_names_what_is_missing(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(LayoutError, match="missing val.*Delete it"):
        require_paths(tmp_path, ["train", "val"], what="Fake data", fix="Delete it.")
