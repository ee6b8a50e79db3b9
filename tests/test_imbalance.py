"""Unit tests for tlcourse.imbalance: long-tailed subsets, class weights, balanced sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse import imbalance
from tlcourse.datasets import catalog


def test_long_tail_counts_fall_from_max_to_min():
    counts = imbalance.long_tail_counts(10, 100, 5)
    assert counts[0] == 100 and counts[-1] == 5
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert imbalance.long_tail_counts(1, 7, 3) == [7]
    with pytest.raises(ValueError):
        imbalance.long_tail_counts(3, 5, 10)


def test_imbalanced_subset_has_requested_counts_and_is_repeatable():
    targets = np.repeat(np.arange(4), 30)
    idx = imbalance.imbalanced_subset(targets, [30, 10, 3, 1], seed=1)
    assert np.bincount(targets[idx]).tolist() == [30, 10, 3, 1]
    assert np.array_equal(
        idx, imbalance.imbalanced_subset(torch.as_tensor(targets), [30, 10, 3, 1], seed=1)
    )
    with pytest.raises(ValueError, match="fewer than"):
        imbalance.imbalanced_subset(targets, [31, 1, 1, 1])
    with pytest.raises(ValueError, match="entries"):
        imbalance.imbalanced_subset(targets, [1, 1])


def test_class_weights_match_sklearn_balanced_formula():
    targets = torch.tensor([0] * 6 + [1] * 3 + [2] * 1)
    w = imbalance.class_weights(targets, 3)
    expected = torch.tensor([10 / (3 * 6), 10 / (3 * 3), 10 / (3 * 1)])
    assert w.dtype == torch.float32 and torch.allclose(w, expected)
    with pytest.raises(ValueError, match="no examples"):
        imbalance.class_weights(targets, 4)


def test_weighted_loss_upweights_rare_class():
    targets = torch.tensor([0] * 9 + [1])
    loss = imbalance.weighted_loss(targets, 2)
    assert loss.weight[1] > loss.weight[0] * 5


def test_balanced_sampler_draws_classes_about_equally():
    targets = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    sampler = imbalance.balanced_sampler(targets, num_samples=3000, seed=0)
    drawn = np.bincount(targets[list(sampler)].numpy(), minlength=3) / 3000
    assert np.allclose(drawn, 1 / 3, atol=0.05)


@pytest.mark.slow
@pytest.mark.claims
def test_claim_weighted_loss_and_sampler_lift_rare_class_recall():
    """Chapter 02: on a long-tailed training set, a class-weighted loss or a balanced sampler
    raises the recall of the rarest classes without lowering the mean recall."""
    from torch.utils.data import DataLoader, TensorDataset

    from tests.claims_data import backbone_and_preprocessing, features, subset
    from tlcourse.engine import fit, predict
    from tlcourse.metrics import per_class_report
    from tlcourse.repro import seed_everything

    backbone, pre = backbone_and_preprocessing()
    data = catalog.load("glyphs-digits", "train")
    counts = imbalance.long_tail_counts(10, 150, 3)
    idx = imbalance.imbalanced_subset(data.targets, counts)
    train = features(backbone, pre, data.images[idx], data.targets[idx])
    test = features(backbone, pre, *subset("glyphs-digits", "test", 50))

    def recall(loss_fn=None, sampler=None):
        seed_everything(0)
        head = torch.nn.Linear(train[0].shape[1], 10)
        loader = DataLoader(
            TensorDataset(*train), batch_size=64, sampler=sampler, shuffle=sampler is None
        )
        fit(head, loader, epochs=40, lr=1e-2, loss_fn=loss_fn, device="cpu", progress=False)
        logits, y = predict(head, DataLoader(TensorDataset(*test), batch_size=512), device="cpu")
        return per_class_report(logits, y)["recall"].to_numpy()

    plain = recall()
    for fixed in (
        recall(loss_fn=imbalance.weighted_loss(train[1], 10)),
        recall(sampler=imbalance.balanced_sampler(train[1])),
    ):
        assert fixed[-3:].mean() - plain[-3:].mean() > 0.03, (plain, fixed)
        assert fixed.mean() > plain.mean() - 0.01, (plain, fixed)
