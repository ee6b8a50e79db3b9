"""Unit tests for tlcourse.imbalance: long-tailed subsets, class weights, balanced sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse import imbalance


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
    assert np.array_equal(idx, imbalance.imbalanced_subset(torch.as_tensor(targets), [30, 10, 3, 1], seed=1))
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
