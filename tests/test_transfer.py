"""tlcourse.transfer: the experiments of chapter 01 (unit tests on tiny models, then the claims)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from PIL import Image

from tlcourse import transfer
from tlcourse.datasets import catalog, splits
from tlcourse.datasets.imagefolder import TensorImageDataset
from tlcourse.nets import tiny_cnn
from tlcourse.surgery import count_parameters

from helpers import blobs

TINY = transfer.Budget(epochs=2, steps_per_epoch=3, batch_size=8)


def tiny_set(n: int = 60, num_classes: int = 3, seed: int = 0) -> TensorImageDataset:
    x, y = blobs(n, num_classes, seed).tensors
    return TensorImageDataset(x, y, [str(c) for c in range(num_classes)])


def make_tiny(num_classes: int) -> torch.nn.Module:
    return tiny_cnn(num_classes, width=4)


def test_budget_checks_and_counts_steps():
    assert transfer.Budget(epochs=3, steps_per_epoch=10).steps == 30
    with pytest.raises(ValueError, match="epochs >= 2"):
        transfer.Budget(epochs=1)


def test_sampled_loader_takes_the_same_steps_whatever_the_size():
    for n in (3, 60):
        batches = list(transfer.sampled_loader(tiny_set(n), TINY, seed=1))
        assert len(batches) == TINY.steps_per_epoch
        assert all(x.shape[0] == TINY.batch_size for x, _ in batches)


def test_few_labels_is_balanced_and_nested():
    data = tiny_set(60)
    five, two = splits.few_labels(data, 5, seed=0), splits.few_labels(data, 2, seed=0)
    assert np.bincount(splits.targets_of(five)).tolist() == [5, 5, 5]
    as_rows = lambda d: {tuple(r.flatten()[:4].tolist()) for r in d.images}  # noqa: E731
    assert as_rows(two) <= as_rows(five)


def test_train_frozen_freezes_exactly_the_first_k_blocks():
    model = transfer.train_frozen(make_tiny, tiny_set(), 3, 2, TINY)
    assert not any(p.requires_grad for p in model.backbone.stem.parameters())
    assert not any(p.requires_grad for p in model.backbone.block1.parameters())
    assert all(p.requires_grad for p in model.backbone.block2.parameters())


def test_frozen_blocks_do_not_change():
    torch.manual_seed(0)
    source = make_tiny(3)
    before = {k: v.clone() for k, v in source.backbone.stem.state_dict().items()}
    model = transfer.train_frozen(transfer.transferred(source), tiny_set(), 3, 1, TINY)
    for key, value in model.backbone.stem.state_dict().items():
        assert torch.equal(value, before[key]), key  # weights and BatchNorm statistics


def test_transferred_copies_the_backbone_and_adds_a_fresh_head():
    torch.manual_seed(0)
    source = make_tiny(5)
    model = transfer.transferred(source)(2)
    assert model.head.out_features == 2 and source.head.out_features == 5
    assert torch.equal(model.backbone.stem[0].weight, source.backbone.stem[0].weight)
    assert model.backbone.stem[0].weight is not source.backbone.stem[0].weight


def test_labels_curve_runs_every_strategy_and_count():
    data = tiny_set(60)
    df = transfer.labels_curve(make_tiny, make_tiny, data, tiny_set(30, seed=1), labels_per_class=(1, 4),
                               budget=TINY)  # fmt: skip
    assert len(df) == 6 and set(df.strategy) == set(transfer.STRATEGIES)
    assert df.accuracy.between(0, 1).all()
    table = transfer.curve_table(df)
    assert table.shape == (2, 3)
    with pytest.raises(ValueError, match="Unknown strategies"):
        transfer.labels_curve(make_tiny, make_tiny, data, data, strategies=("lora",))


def test_freeze_k_curve_has_one_row_per_k_and_fewer_trainable_as_k_grows():
    df = transfer.freeze_k_curve(make_tiny, tiny_set(), tiny_set(30, seed=1), budget=TINY)
    assert df.k.tolist() == [0, 1, 2, 3]
    assert df.frozen.iloc[0] == "(none)" and df.frozen.iloc[-1] == "stem+block1+block2"
    assert df.trainable.is_monotonic_decreasing
    assert df.trainable.iloc[-1] == count_parameters(make_tiny(3).head)


def test_pretrain_learns_the_source():
    model = transfer.pretrain(make_tiny, tiny_set(90), transfer.Budget(epochs=3, steps_per_epoch=15, batch_size=16,
                                                                       scratch_lr=1e-2))  # fmt: skip
    assert transfer.test_accuracy(model, tiny_set(60, seed=3)) > 0.8


def test_decision_table_picks_the_best_strategy():
    rows = [("a", 5, "scratch", 0.2), ("a", 5, "fine-tune", 0.7), ("a", 5, "linear probe", 0.6),
            ("b", 5, "scratch", 0.5), ("b", 5, "fine-tune", 0.4), ("b", 5, "linear probe", 0.3)]  # fmt: skip
    import pandas as pd

    df = pd.DataFrame(rows, columns=["target", "labels_per_class", "strategy", "accuracy"])
    table = transfer.decision_table(df)
    assert table.loc[("a", 5), "best"] == "fine-tune"
    assert table.loc[("b", 5), "best"] == "scratch"
    assert table.loc[("a", 5), "gain over scratch"] == pytest.approx(0.5)


def test_full_profile_path_on_a_fake_image_folder(tmp_path, monkeypatch):
    """The full profile reads an ImageFolder from disk through a transform: same functions."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, colour in enumerate(((255, 0, 0), (0, 0, 255))):
            folder = tmp_path / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(6):
                pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (12, 12, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    from torchvision.transforms import v2

    transform = v2.Compose([v2.PILToTensor(), v2.Resize(8), v2.ToDtype(torch.float32, scale=True)])
    from tlcourse.datasets import images

    monkeypatch.setattr(images, "prepare_pets", lambda: tmp_path)  # what the download would return
    train, test = (catalog.load("oxford-pets", s, transform) for s in ("train", "test"))
    assert len(catalog.load(str(tmp_path), "test", transform)) == len(test) == 12
    make = functools.partial(tiny_cnn, width=4)
    df = transfer.labels_curve(make, make, train, test, labels_per_class=(2,), budget=TINY)
    assert len(df) == 3
    assert len(splits.few_labels(train, 3)) == 6
    assert splits.few_labels(train, 3)[0][0].shape == (3, 8, 8)


# ---------------------------------------------------------------------------------- claims
# The chapter's key numbers, measured on the quick-profile data with the shipped course backbone
# and the notebook's budget (one seed; thresholds leave a margin for other machines).

QUICK = transfer.Budget(epochs=4, steps_per_epoch=20, batch_size=32, lr=1e-2, scratch_lr=3e-3)


@pytest.fixture(scope="module")
def course():
    from tlcourse import zoo

    pre = zoo.preprocessing("glyphnet-s")
    split = functools.partial(catalog.load, transform=pre)
    return {
        "pretrained": functools.partial(zoo.load, "glyphnet-s"),
        "scratch": functools.partial(zoo.load, "glyphnet-s", pretrained=False),
        "train": split("glyphs-digits", "train"),
        "test": splits.few_labels(split("glyphs-digits", "test"), 100),
        "far_train": split("sklearn-digits", "train"),
        "far_test": split("sklearn-digits", "test"),
    }


@pytest.mark.claims
def test_claim_transfer_beats_scratch_by_15_points_at_5_labels(course):
    c = course
    df = transfer.labels_curve(c["pretrained"], c["scratch"], c["train"], c["test"], (5,), QUICK)
    acc = df.set_index("strategy")["accuracy"]
    assert acc["fine-tune"] - acc["scratch"] >= 0.15, acc.to_dict()
    assert acc["linear probe"] - acc["scratch"] >= 0.15, acc.to_dict()


@pytest.mark.claims
def test_claim_freezing_some_blocks_beats_training_all_at_20_labels(course):
    c = course
    few = splits.few_labels(c["train"], 20)
    df = transfer.freeze_k_curve(c["pretrained"], few, c["test"], ks=(0, 2, 4), budget=QUICK)
    acc = df.set_index("k")["accuracy"]
    assert acc[[2, 4]].max() > acc[0] + 0.03, acc.to_dict()


@pytest.mark.claims
def test_claim_an_unrelated_source_transfers_nothing(course):
    c = course
    source = transfer.pretrain(
        c["scratch"], c["far_train"], transfer.Budget(epochs=4, steps_per_epoch=15, batch_size=64)
    )
    assert transfer.test_accuracy(source, c["far_test"]) > 0.9  # good at its own task
    kw = dict(labels_per_class=(20,), budget=QUICK, strategies=("linear probe",))
    ours = transfer.labels_curve(c["pretrained"], c["scratch"], c["train"], c["test"], **kw)
    unrelated = transfer.labels_curve(
        transfer.transferred(source), c["scratch"], c["train"], c["test"], **kw
    )
    assert ours.accuracy[0] - unrelated.accuracy[0] >= 0.3, (
        ours.accuracy[0],
        unrelated.accuracy[0],
    )


@pytest.mark.claims
def test_claim_far_target_frozen_features_transfer_negatively_fine_tuning_does_not(course):
    c = course
    few = splits.few_labels(c["far_train"], 50)
    probe = transfer.labels_curve(c["pretrained"], c["scratch"], c["far_train"], c["far_test"], (50,), QUICK,
                                  strategies=("linear probe",)).accuracy[0]  # fmt: skip
    scratch = transfer.test_accuracy(
        transfer.train_scratch(c["scratch"], few, 10, QUICK), c["far_test"]
    )
    tuned = transfer.test_accuracy(
        transfer.train_fine_tune(c["pretrained"], few, 10, QUICK), c["far_test"]
    )
    assert scratch > 0.85 and probe < scratch - 0.03, (probe, scratch)
    assert tuned > probe + 0.03 and tuned > scratch - 0.05, (tuned, probe, scratch)
