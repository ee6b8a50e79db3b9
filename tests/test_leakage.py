"""Unit tests for tlcourse.leakage: augment-then-split leaks, group splits, near-duplicate audit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse import leakage
from tlcourse.augment import augmentation


def test_with_views_repeats_targets_and_groups():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    targets = torch.arange(5)
    x, y, g = leakage.with_views(images, targets, 3, augmentation("light"), seed=0)
    assert x.shape == (15, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert g.tolist() == y.tolist()
    assert torch.equal(x[3], images[1])  # the original comes first in its group


def test_random_split_leaks_groups_and_group_split_does_not():
    groups = np.repeat(np.arange(50), 4)
    tr, te = leakage.random_split(len(groups), 0.2, seed=0)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == 200
    assert leakage.shared_groups(groups, tr, te) > 10
    tr, te = leakage.group_split(groups, 0.2, seed=0)
    assert leakage.shared_groups(groups, tr, te) == 0
    assert len(tr) + len(te) == 200


def test_near_duplicates_finds_copies():
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(100, 16, generator=g)
    queries = torch.cat(
        [reference[:5] + 0.01 * torch.randn(5, 16, generator=g), torch.randn(20, 16, generator=g)]
    )
    assert leakage.near_duplicates(queries, reference, 0.95).tolist() == [0, 1, 2, 3, 4]
    sims = leakage.max_similarity(queries, reference)
    assert sims.shape == (25,) and float(sims[:5].min()) > 0.99


@pytest.mark.slow
@pytest.mark.claims
def test_claim_near_duplicates_inflate_a_random_split():
    """Chapter 02: near-copies across a random split inflate validation accuracy; a group split does not."""
    from torchvision.transforms import v2

    from tests.claims_data import backbone_and_preprocessing, features, subset
    from tlcourse.recipes import logistic_probe

    backbone, pre = backbone_and_preprocessing()
    x, y = subset("glyphs-digits", "train", 20, seed=7)
    near = v2.Compose(
        [
            v2.RandomAffine(degrees=0, translate=(0.04, 0.04)),
            v2.ColorJitter(brightness=0.15, contrast=0.15),
        ]
    )
    views, targets, groups = leakage.with_views(x, y, 5, near, seed=0)
    feats = features(backbone, pre, views, targets)
    scores = {}
    for name, (tr, va) in {
        "random": leakage.random_split(len(targets), 0.2),
        "group": leakage.group_split(groups, 0.2),
    }.items():
        scores[name] = logistic_probe((feats[0][tr], feats[1][tr]), (feats[0][va], feats[1][va]))
    assert scores["random"] - scores["group"] >= 0.04, scores
    tr, va = leakage.random_split(len(targets), 0.2)
    test = features(backbone, pre, *subset("glyphs-digits", "test", 20))
    threshold = float(torch.quantile(leakage.max_similarity(test[0], feats[0][tr]), 0.99))
    assert len(leakage.near_duplicates(feats[0][va], feats[0][tr], threshold)) > 0.25 * len(va)
