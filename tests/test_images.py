"""Quick image datasets: rendering, deterministic trees, loaders, and errors that name the fix."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from tlcourse.datasets import catalog, glyphs, imagefolder, images, splits
from tlcourse.datasets.imagefolder import MARKER, ImageFolderError


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def tiny(monkeypatch) -> str:
    """Shrink glyphs-digits to 4/2/2 images per class so a build takes a fraction of a second."""
    spec = images.GLYPH_SETS["glyphs-digits"]
    monkeypatch.setitem(
        images.GLYPH_SETS, "glyphs-digits", images.GlyphSet(spec.chars, (4, 2, 2), spec.role)
    )
    return "glyphs-digits"


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*.png")):
        h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


def test_render_is_a_function_of_the_generator_state():
    a = glyphs.render("A", np.random.default_rng(1))
    b = glyphs.render("A", np.random.default_rng(1))
    c = glyphs.render("A", np.random.default_rng(2))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_only_fonts_that_have_the_glyph_are_used():
    greek = glyphs.fonts_with("α")
    assert greek and not any(f.startswith("cm") for f in greek)
    assert "cmr10.ttf" in glyphs.fonts_with("7")
    with pytest.raises(ValueError, match="No matplotlib font"):
        glyphs.fonts_with("\u4e00")


def test_same_seed_same_bytes_other_seed_other_bytes(home, tiny, tmp_path, monkeypatch):
    first = _digest(images.prepare(tiny, seed=3, workers=1, verbose=False))
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "other"))
    assert _digest(images.prepare(tiny, seed=3, workers=2, verbose=False)) == first
    assert _digest(images.prepare(tiny, seed=4, workers=1, verbose=False)) != first


def test_layout_counts_and_marker(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    assert imagefolder.check_image_folder(root) == [str(d) for d in range(10)]
    assert len(list((root / "train").rglob("*.png"))) == 40
    assert json.loads((root / MARKER).read_text()) == {
        "name": tiny,
        "version": images.VERSION,
        "seed": 0,
    }
    assert not list(root.parent.glob(f".{tiny}*")), "no temporary folder is left behind"


def test_complete_tree_is_reused_and_half_written_tree_rebuilt(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    stamp = (root / MARKER).stat().st_mtime_ns
    assert images.prepare(tiny, workers=1, verbose=False) == root
    assert (root / MARKER).stat().st_mtime_ns == stamp
    (root / MARKER).unlink()  # as if the build had been interrupted
    shutil.rmtree(root / "test")
    images.prepare(tiny, workers=1, verbose=False)
    assert images.is_complete(tiny) and (root / "test").is_dir()
    assert not images.is_complete(tiny, seed=1)


def test_image_folder_and_tensors_agree(home, tiny):
    transform = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    folder = catalog.load(
        images.prepare(tiny, workers=1, verbose=False), "val", transform=transform
    )
    tensors = catalog.load(tiny, "val")
    assert len(folder) == len(tensors) == 20 and folder.classes == tensors.classes
    assert tensors.images.dtype == torch.uint8 and tensors.images.shape == (20, 3, 32, 32)
    x, y = folder[7]
    assert torch.allclose(x, tensors.images[7].float() / 255) and y == tensors[7][1]


def test_tensor_cache_is_rebuilt_from_png_when_stale(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    built = catalog.load(tiny, "train")
    for cache in root.glob(".tensors-*"):
        cache.unlink()
    decoded = imagefolder.load_tensors(root, "train")  # decodes the PNG files, then caches
    assert torch.equal(built.images, decoded.images) and torch.equal(built.targets, decoded.targets)
    assert (root / ".tensors-train.safetensors").is_file()


def test_tensor_loader_normalises_batches(home, tiny):
    data = catalog.load(tiny, "train")
    x, y = next(iter(imagefolder.tensor_loader(data, (0.5,) * 3, (0.25,) * 3, batch_size=8)))
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x[0], (data.images[0].float() / 255 - 0.5) / 0.25)
    assert len(data.subset([0, 5, 9])) == 3


@pytest.mark.slow
def test_sklearn_digits_are_a_stratified_split(home):
    root = images.prepare("sklearn-digits", verbose=False)
    counts = [len(list((root / s).rglob("*.png"))) for s in images.SPLITS]
    assert sum(counts) == 1797 and counts[0] > counts[1] > 0
    train = catalog.load("sklearn-digits", "train")
    assert sorted(set(train.targets.tolist())) == list(range(10))
    assert train.images[0].float().mean() > 128, "dark ink on white paper"


def test_catalogue_and_datasheets():
    for name in (
        "glyphs-latin",
        "glyphs-digits",
        "glyphs-greek",
        "glyphs-cyrillic",
        "sklearn-digits",
    ):
        sheet = catalog.info(name).datasheet
        assert "Licence" in sheet and "Regenerate" in sheet and "Splits" in sheet
    assert catalog.info("glyphs-latin").classes == 52
    with pytest.raises(KeyError, match="glyphs-greek"):
        catalog.load("glyphs-grek")


def test_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="data prepare"):
        catalog.load(tmp_path / "nowhere")


def test_wrong_layout_names_the_expected_one(tmp_path):
    (tmp_path / "cats").mkdir()
    glyph = glyphs.render("A", np.random.default_rng(0))
    from PIL import Image

    Image.fromarray(glyph).save(tmp_path / "cats" / "1.png")
    with pytest.raises(
        ImageFolderError, match=r"missing the train, val, test folder.*class folders directly"
    ):
        imagefolder.check_image_folder(tmp_path)


def test_empty_class_folder_is_named(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    for f in (root / "train" / "3").iterdir():
        f.unlink()
    with pytest.raises(ImageFolderError, match=r"train/3 is empty.*data prepare glyphs-digits"):
        catalog.load(images.prepare(tiny, workers=1, verbose=False), "train")


def test_corrupt_image_is_named_with_the_fix(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    bad = root / "val" / "4" / "00001.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    folder = catalog.load(images.prepare(tiny, workers=1, verbose=False), "val")
    index = folder.samples.index((str(bad), 4))
    with pytest.raises(ImageFolderError, match=r"00001\.png.*delete it"):
        folder[index]
    with pytest.raises(ImageFolderError, match=r"00001\.png"):
        imagefolder.check_image_folder(root, verify=True)


def test_splits_with_different_classes_are_refused(home, tiny):
    root = images.prepare(tiny, workers=1, verbose=False)
    shutil.rmtree(root / "test" / "9")
    with pytest.raises(ImageFolderError, match="same class folders"):
        imagefolder.check_image_folder(root)


def test_labels_per_class_subset_is_stratified_nested_and_repeatable():
    targets = np.repeat(np.arange(5), 30)
    five = splits.labels_per_class_subset(targets, 5, seed=1)
    assert np.array_equal(five, splits.labels_per_class_subset(torch.as_tensor(targets), 5, seed=1))
    assert np.bincount(targets[five]).tolist() == [5] * 5
    assert set(five) <= set(splits.labels_per_class_subset(targets, 20, seed=1))
    assert not np.array_equal(five, splits.labels_per_class_subset(targets, 5, seed=2))
    with pytest.raises(ValueError, match="only 30 examples"):
        splits.labels_per_class_subset(targets, 31)


def test_stratified_split_is_disjoint_and_complete():
    targets = np.repeat(np.arange(4), 25)
    parts = splits.stratified_split(targets, (0.6, 0.2, 0.2), seed=0)
    assert [len(p) for p in parts] == [60, 20, 20]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    splits.check_disjoint(train=parts[0], val=parts[1], test=parts[2])
    with pytest.raises(ValueError, match="leak"):
        splits.check_disjoint(train=parts[0], test=parts[0][:3])
