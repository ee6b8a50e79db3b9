"""The one home for safe writing: a failed write or build leaves the old version and no temp files."""

import json

import pytest

from tlcourse.atomic import atomic_write, build_atomically, write_text
from tlcourse.datasets import images, speech, text


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny(monkeypatch) -> str:
    """glyphs-digits shrunk to 4/2/2 images per class (a build takes a fraction of a second)."""
    spec = images.GLYPH_SETS["glyphs-digits"]
    small = images.GlyphSet(spec.chars, (4, 2, 2), spec.role)
    monkeypatch.setitem(images.GLYPH_SETS, "glyphs-digits", small)
    return "glyphs-digits"


class Boom(RuntimeError):
    pass


def _fail(*_args, **_kwargs):
    raise Boom("the maker failed midway")


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = write_text(tmp_path / "a.txt", "old")

    def half(tmp):
        tmp.write_text("half")
        _fail()

    with pytest.raises(Boom):
        atomic_write(path, half)
    assert path.read_text() == "old" and _leftovers(tmp_path) == []


def test_build_atomically_replaces_only_when_complete(tmp_path):
    dest = tmp_path / "tree"
    build_atomically(dest, lambda tmp: (tmp / "v").write_text("1"))
    assert build_atomically(dest, lambda tmp: (tmp / "v").write_text("2")) == dest
    assert (dest / "v").read_text() == "1"  # exists and not replace: untouched

    def half(tmp):
        (tmp / "v").write_text("broken")
        _fail()

    with pytest.raises(Boom):
        build_atomically(dest, half, replace=True)
    assert (dest / "v").read_text() == "1" and _leftovers(tmp_path) == []
    build_atomically(dest, lambda tmp: (tmp / "v").write_text("2"), replace=True)
    assert (dest / "v").read_text() == "2" and _leftovers(tmp_path) == []


def test_image_maker_failing_midway_keeps_the_previous_dataset(home, tiny, monkeypatch):
    root = images.prepare(tiny, workers=1, verbose=False)
    marker = (root / images.MARKER).read_text()

    def render_then_fail(seed, tmp, workers):
        (tmp / "train").mkdir()
        _fail()

    monkeypatch.setitem(images._BUILDERS, tiny, render_then_fail)
    with pytest.raises(Boom):
        images.prepare(tiny, force=True, workers=1, verbose=False)
    assert (root / images.MARKER).read_text() == marker and images.is_complete(tiny)
    assert _leftovers(root.parent) == []


def test_text_and_speech_makers_failing_midway_leave_no_temp_folder(home, monkeypatch):
    root = text.prepare()
    assert json.loads((root / images.MARKER).read_text())["version"] == text.VERSION
    monkeypatch.setattr(text, "load_corpus", _fail)
    with pytest.raises(Boom):
        text.prepare(force=True)
    assert (root / "val.jsonl").is_file() and _leftovers(root.parent) == []
    monkeypatch.setattr(speech, "synth_noise", _fail)
    with pytest.raises(Boom):
        speech.prepare("speech-keywords")
    assert not (root.parent / "speech-keywords").exists() and _leftovers(root.parent) == []


def test_an_old_tickets_layout_is_rebuilt(home):
    root = text.prepare()
    (root / images.MARKER).unlink()  # as written by an older version (validation.jsonl)
    (root / "val.jsonl").rename(root / "validation.jsonl")
    text.prepare()
    assert (root / "val.jsonl").is_file() and not (root / "validation.jsonl").exists()
