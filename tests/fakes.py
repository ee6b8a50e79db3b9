"""Miniature fakes of the full-profile downloads, in the same archive layout, and a local server.

``serve(folder)`` serves a folder over HTTP on 127.0.0.1 (loopback only) from a thread;
``fake_resource(real, archive, base_url)`` points a real :class:`Resource` at a fake archive,
with the fake's own sha256. The ``*_files()`` functions return ``{member path: bytes}`` with the
exact member paths of the real archives, a few tiny files per class.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import socketserver
import tarfile
import threading
import wave
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from PIL import Image

from tlcourse.download import Resource


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()


class _LoopbackServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:  # skip HTTPServer's getfqdn(): no DNS look-up
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


@contextmanager
def serve_handler(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """Run ``handler`` on 127.0.0.1 in a thread; yield the base URL."""
    server = _LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` on 127.0.0.1; yield ``(base_url, requested_paths)``."""
    handler = type("Handler", (_QuietHandler,), {"requests": []})
    with serve_handler(partial(handler, directory=str(folder))) as base:
        yield base, handler.requests


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fake_resource(real: Resource, archive: Path, base_url: str) -> Resource:
    """``real`` pointed at ``base_url/<archive name>``, with the fake archive's sha256."""
    return dataclasses.replace(
        real,
        url=f"{base_url}/{archive.name}",
        mirrors=(),
        sha256=sha256_of(archive),
        md5=None,
        size=archive.stat().st_size,
    )


def write_tar(path: Path, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> Path:
    """A ``.tar.gz`` with ``files`` (and directory entries ``dirs``) at these member paths."""
    with tarfile.open(path, "w:gz") as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    """A ``.zip`` with ``files`` at these member paths."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def jpeg_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A tiny real JPEG (so an ImageFolder can open it)."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, 128)).save(buf, "JPEG")
    return buf.getvalue()


def wav_bytes(n_samples: int = 1600, rate: int = 16_000) -> bytes:
    """A tiny real 16-bit mono WAV of silence."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * n_samples)
    return buf.getvalue()


PET_BREEDS = ("Abyssinian", "Bengal", "american_bulldog", "great_pyrenees")


def pets_files(per_breed: int = 6) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """``(images.tar.gz members, annotations.tar.gz members)`` of a 4-breed, 24-image Pets."""
    images, trainval, test = {}, [], []
    for b, breed in enumerate(PET_BREEDS):
        species = 1 if breed[0].isupper() else 2
        for i in range(1, per_breed + 1):
            images[f"images/{breed}_{i}.jpg"] = jpeg_bytes(10 * b + i)
            line = f"{breed}_{i} {b + 1} {species} {b + 1}"
            (trainval if i <= per_breed - 2 else test).append(line)
    images["images/Abyssinian_100.mat"] = b"not an image, shipped in the real archive too"
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n"
    notes = {
        "annotations/README": b"fake Oxford-IIIT Pets annotations",
        "annotations/list.txt": (header + "\n".join(trainval + test) + "\n").encode(),
        "annotations/trainval.txt": ("\n".join(trainval) + "\n").encode(),
        "annotations/test.txt": ("\n".join(test) + "\n").encode(),
        "annotations/trimaps/Abyssinian_1.png": b"",
    }
    return images, notes


def hymenoptera_files(per_class: int = 3) -> dict[str, bytes]:
    """Members of a miniature ``hymenoptera_data.zip``."""
    return {
        f"hymenoptera_data/{split}/{cls}/{cls}_{i}.jpg": jpeg_bytes(i)
        for split in ("train", "val")
        for cls in ("ants", "bees")
        for i in range(per_class)
    }


SPEECH_WORDS = ("no", "yes", "zero")


def speech_commands_files() -> dict[str, bytes]:
    """Members of a miniature ``speech_commands_v0.02.tar.gz`` (members start with ``./``)."""
    files = {f"./{w}/spk{s}_nohash_0.wav": wav_bytes() for w in SPEECH_WORDS for s in range(4)}
    files["./_background_noise_/white_noise.wav"] = wav_bytes(16_000)
    files["./validation_list.txt"] = b"".join(
        f"{w}/spk2_nohash_0.wav\n".encode() for w in SPEECH_WORDS
    )
    files["./testing_list.txt"] = b"".join(
        f"{w}/spk3_nohash_0.wav\n".encode() for w in SPEECH_WORDS
    )
    files["./LICENSE"] = b"CC BY 4.0"
    files["./README.md"] = b"fake speech commands"
    return files


def imdb_files(per_class: int = 3) -> dict[str, bytes]:
    """Members of a miniature ``aclImdb_v1.tar.gz``."""
    files = {"aclImdb/README": b"fake", "aclImdb/imdb.vocab": b"the\nmovie\n"}
    for split in ("train", "test"):
        for cls, word in (("neg", "awful"), ("pos", "great")):
            for i in range(per_class):
                text = f"A {word} film<br /><br />number {i} of {split}."
                files[f"aclImdb/{split}/{cls}/{i}_{3 if cls == 'neg' else 8}.txt"] = text.encode()
    files["aclImdb/train/unsup/0_0.txt"] = b"unlabelled"
    return files


def sst2_files() -> dict[str, bytes]:
    """Members of a miniature ``SST-2.zip`` (tab-separated, quotes left as they are)."""
    train = 'sentence\tlabel\nhide new secretions \t0\na "gorgeous" film \t1\nit \'s dull \t0\n'
    return {
        "SST-2/train.tsv": train.encode(),
        "SST-2/dev.tsv": b"sentence\tlabel\nit 's a charming journey . \t1\n",
        "SST-2/test.tsv": b"index\tsentence\n0\tuncertain .\n",
        "SST-2/original/README.txt": b"fake",
    }
