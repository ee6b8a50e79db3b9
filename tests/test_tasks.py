"""The shared image task of chapters 04-05: constants, label budget, both profiles on fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from tlcourse import tasks
from tlcourse.datasets import images
from tlcourse.tasks import IMAGE_TASK, ImageTask

CLASSES = ("abyssinian", "beagle", "pug")
TO_FLOAT = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Resize((16, 16))])


def fake_tree(
    root: Path, per_split: tuple[int, int, int] = (6, 2, 3), varied: bool = False
) -> Path:
    """An ImageFolder tree ``root/{train,val,test}/<class>/*.png`` of small random images."""
    rng = np.random.default_rng(0)
    for split, count in zip(("train", "val", "test"), per_split, strict=True):
        for c in CLASSES:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(count):
                h, w = (
                    (int(rng.integers(20, 40)), int(rng.integers(20, 40))) if varied else (32, 32)
                )
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


def test_image_task_names_real_data_and_backbones():
    assert IMAGE_TASK.dataset in images.GLYPH_SETS
    assert IMAGE_TASK.dataset_for("quick") == IMAGE_TASK.dataset
    assert IMAGE_TASK.dataset_for("full") == "oxford-pets"
    assert IMAGE_TASK.backbone_for("quick") == IMAGE_TASK.backbone
    assert IMAGE_TASK.backbone_for("full") == IMAGE_TASK.full_backbone
    assert IMAGE_TASK.budget("quick") == IMAGE_TASK.labels_per_class
    assert IMAGE_TASK.budget("full") is None


def test_train_indices_are_seeded_balanced_and_nested():
    targets = np.repeat(np.arange(4), 10)
    task = ImageTask("glyphs-greek", labels_per_class=3, backbone="x", seed=1)
    idx = task.train_indices(targets, "quick")
    assert np.array_equal(idx, task.train_indices(targets, "quick"))
    assert np.bincount(targets[idx]).tolist() == [3, 3, 3, 3]
    bigger = ImageTask("glyphs-greek", labels_per_class=5, backbone="x", seed=1).train_indices(
        targets, "quick"
    )
    assert set(idx) <= set(bigger)
    assert len(task.train_indices(targets, "full")) == len(targets)  # full: every image


def test_quick_load_cuts_train_to_the_budget(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "glyphs")
    monkeypatch.setattr(images, "prepare", lambda name, **kw: root)
    task = ImageTask("glyphs-greek", labels_per_class=4, backbone="x")
    data = task.load("quick", transform=v2.ToDtype(torch.float32, scale=True))
    assert data.classes == list(CLASSES)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 6, 9)
    assert np.bincount(np.asarray(data.train.targets)).tolist() == [4, 4, 4]
    x, y = data.train[0]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and isinstance(y, int)


def test_default_transform_is_the_backbones_preprocessing(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "glyphs")
    monkeypatch.setattr(images, "prepare", lambda name, **kw: root)
    asked = []
    monkeypatch.setattr(
        tasks, "_preprocessing", lambda name: asked.append(name) or (lambda x: x.float())
    )
    data = ImageTask("glyphs-greek", labels_per_class=2, backbone="my-net").load("quick")
    assert asked == ["my-net"] and data.test[0][0].dtype == torch.float32


def test_full_profile_reads_pets_from_disk_through_the_same_call(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "pets", varied=True)
    monkeypatch.setattr(images, "prepare_pets", lambda **kw: root)
    data = IMAGE_TASK.load("full", transform=TO_FLOAT)
    assert data.classes == list(CLASSES)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 9)
    assert data.train[5][0].shape == (3, 16, 16)
    capped = ImageTask("glyphs-greek", 20, "x", full_labels_per_class=2).load(
        "full", transform=TO_FLOAT
    )
    assert len(capped.train) == 6 and sorted(capped.train.targets) == [0, 0, 1, 1, 2, 2]
    assert capped.train.classes == list(CLASSES)


def test_train_transform_applies_to_train_only(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "glyphs")
    monkeypatch.setattr(images, "prepare", lambda name, **kw: root)
    plain = v2.ToDtype(torch.float32, scale=True)
    data = ImageTask("glyphs-greek", 2, "x").load(
        "quick", transform=plain, train_transform=lambda x: torch.zeros(1)
    )
    assert data.train[0][0].shape == (1,) and data.val[0][0].shape == (3, 32, 32)


def test_budget_larger_than_the_split_names_the_fix(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "glyphs")
    monkeypatch.setattr(images, "prepare", lambda name, **kw: root)
    with pytest.raises(ValueError, match="labels_per_class"):
        ImageTask("glyphs-greek", 50, "x").load("quick", transform=lambda x: x)


def test_text_task_full_profile_reads_sst2_and_holds_out_val(monkeypatch):
    from tlcourse.datasets import text
    from tlcourse.tasks import TEXT_TASK

    names = ("negative", "positive")
    fake = {
        "train": text.TextSplit(
            [f"film {i}" for i in range(40)], [i % 2 for i in range(40)], names
        ),
        "val": text.TextSplit(["great"], [1], names),
    }
    monkeypatch.setattr(text, "load_sst2", lambda split, **kw: fake[split])
    data = TEXT_TASK.load("full")
    assert data.test.labels == [1] and data.classes == list(names)
    assert len(data.train) + len(data.val) == 40 and len(data.val) == 2
    assert not set(data.train.texts) & set(data.val.texts)


def test_text_task_quick_profile_is_the_tickets_corpus():
    from tlcourse.tasks import TEXT_TASK

    data = TEXT_TASK.load("quick")
    assert len(data.train) == 786 and len(data.val) == 105 and len(data.test) == 372
    assert data.classes == ["delivery", "billing", "defect", "account", "praise"]
