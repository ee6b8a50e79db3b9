"""fastai glue: DataLoaders from an ImageFolder, the backbone/head splitter, a Learner that trains."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

fastai_track = pytest.importorskip("tlcourse.fastai_track")

from tlcourse.nets import tiny_cnn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def _folder(root: Path, per_class: int = 6, sizes: tuple[int, ...] = (8,)) -> Path:
    """A two-class ImageFolder (train/val/test): class ``dark`` is dark, ``light`` is light."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for k, name in enumerate(("dark", "light")):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                s = sizes[i % len(sizes)]
                pixels = rng.integers(0, 80, (s, s, 3)) + 170 * k
                Image.fromarray(pixels.astype(np.uint8)).save(root / split / name / f"{i:03d}.png")
    return root


def _learner(root: Path, tmp: Path, **kwargs):
    dls = fastai_track.dataloaders(
        fastai_track.task_files(root, "train"),
        fastai_track.task_files(root, "val"),
        mean=MEAN,
        std=STD,
        batch_size=4,
        device="cpu",
        **kwargs,
    )
    torch.manual_seed(0)
    return fastai_track.learner(dls, tiny_cnn(dls.c, width=4), path=tmp / "fastai")


def test_task_files_follow_the_task_indices(tmp_path):
    root = _folder(tmp_path / "data")
    targets = fastai_track.split_targets(root, "train")
    assert targets.tolist() == [0] * 6 + [1] * 6
    files = fastai_track.task_files(root, "train", [0, 7])
    assert [f.parent.name for f in files] == ["dark", "light"] and files[1].name == "001.png"


def test_dataloaders_normalise_and_split_by_folder(tmp_path):
    root = _folder(tmp_path / "data")
    learn = _learner(root, tmp_path)
    x, y = learn.dls.one_batch()
    assert x.shape == (4, 3, 8, 8) and y.shape == (4,)
    assert list(learn.dls.vocab) == ["dark", "light"]
    assert len(learn.dls.train_ds) == 12 and len(learn.dls.valid_ds) == 12
    assert abs(float(x.mean())) < 2.5  # normalised, not raw 0..255 or 0..1


def test_size_resizes_photos_of_varied_size(tmp_path):
    """The full-profile path (photos of different sizes) on a miniature fake."""
    root = _folder(tmp_path / "data", sizes=(8, 12, 10))
    learn = _learner(root, tmp_path, size=6)
    x, _ = learn.dls.one_batch()
    assert x.shape[-2:] == (6, 6)


def test_splitters_and_freeze(tmp_path):
    learn = _learner(_folder(tmp_path / "data"), tmp_path)
    model = learn.model
    groups = fastai_track.backbone_head_splitter(model)
    assert [len(g) for g in groups] == [len(list(model.backbone.parameters())), 2]
    assert (
        len(fastai_track.block_splitter(model)) == 4
    )  # stem, block1, block2, head (pool has no parameters)
    learn.freeze()
    backbone_trainable, head_trainable = fastai_track.trainable_per_group(learn)
    bn = sum(
        p.numel()
        for m in model.backbone.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for p in m.parameters()
    )
    assert head_trainable == sum(p.numel() for p in model.head.parameters())
    assert backbone_trainable == bn  # fastai's train_bn: BatchNorm stays trainable in frozen groups
    learn.unfreeze()
    assert sum(fastai_track.trainable_per_group(learn)) == sum(
        p.numel() for p in model.parameters()
    )


def test_lr_find_fine_tune_and_interpretation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = _folder(tmp_path / "data")
    learn = _learner(root, tmp_path)
    with learn.no_bar(), learn.no_logging():
        suggestion = learn.lr_find(num_it=6, show_plot=False)
        learn.fine_tune(3, base_lr=3e-2)
    assert 0 < suggestion.valley < 10
    assert not (
        tmp_path / "models"
    ).exists()  # temporary files go to the learner's path, not the cwd
    assert fastai_track.test_accuracy(learn, fastai_track.task_files(root, "test")) >= 0.75

    from fastai.interpret import ClassificationInterpretation

    with learn.no_bar():
        interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().sum() == 12


def test_head_that_does_not_match_the_classes_fails_clearly(tmp_path):
    root = _folder(tmp_path / "data")
    dls = fastai_track.dataloaders(
        fastai_track.task_files(root, "train"),
        fastai_track.task_files(root, "val"),
        mean=MEAN,
        std=STD,
        batch_size=4,
        device="cpu",
    )
    with pytest.raises(ValueError, match="replace_head"):
        fastai_track.learner(dls, tiny_cnn(5, width=4), path=tmp_path)
    with pytest.raises(ValueError, match="task_files"):
        fastai_track.dataloaders([], [], mean=MEAN, std=STD)


def test_exercise_references_agree_with_fastai(tmp_path):
    """The ch05 solution reimplements two fastai rules in plain torch; check them against fastai."""
    from fastai.optimizer import Adam

    from tlcourse.grading.references import load_references

    refs = load_references(
        ROOT / "solutions" / "05_keras_and_fastai.ipynb", ["trainable_after_freeze_to", "group_lrs"]
    )
    root = _folder(tmp_path / "data")
    learn = _learner(root, tmp_path)
    learn.splitter = fastai_track.block_splitter
    learn.create_opt()
    for n in (0, 1, 2, -1):
        learn.freeze_to(n)
        trainable = sum(p.numel() for p in learn.model.parameters() if p.requires_grad)
        assert trainable == refs["trainable_after_freeze_to"](learn.model, n)
    groups = fastai_track.block_splitter(learn.model)
    for lr in (slice(1e-5, 1e-3), slice(None, 1e-2), 3e-3):
        opt = Adam(groups, lr=1e-3)
        opt.set_hyper("lr", lr)
        assert np.allclose([h["lr"] for h in opt.hypers], refs["group_lrs"](lr, len(groups)))
