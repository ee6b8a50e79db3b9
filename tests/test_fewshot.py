"""Few-shot episodes and prototypes against their definitions."""

import pytest
import torch

from tlcourse.fewshot import episode_accuracy, evaluate_episodes, prototypes, sample_episode


def _pool(classes=6, per_class=10, dim=4, spread=0.1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = 5 * torch.randn(classes, dim, generator=gen)
    targets = torch.arange(classes).repeat_interleave(per_class)
    return centres[targets] + spread * torch.randn(len(targets), dim, generator=gen), targets


def test_episode_shapes_labels_and_disjoint_support_query():
    _, targets = _pool()
    ep = sample_episode(
        targets, n_way=3, k_shot=2, n_query=4, generator=torch.Generator().manual_seed(1)
    )
    assert ep.support.shape == (6,) and ep.query.shape == (12,)
    assert set(ep.support.tolist()).isdisjoint(ep.query.tolist())
    assert ep.support_labels.tolist() == [0, 0, 1, 1, 2, 2]
    # every support / query index belongs to the pool class that its episode label names
    assert torch.equal(targets[ep.support], ep.classes[ep.support_labels])
    assert torch.equal(targets[ep.query], ep.classes[ep.query_labels])
    assert len(set(ep.classes.tolist())) == 3


def test_prototypes_are_class_means_in_any_order():
    support = torch.tensor([[0.0, 2.0], [4.0, 0.0], [2.0, 2.0], [6.0, 2.0]])
    labels = torch.tensor([0, 1, 0, 1])
    assert torch.equal(prototypes(support, labels, 2), torch.tensor([[1.0, 2.0], [5.0, 1.0]]))
    with pytest.raises(ValueError, match="embed"):
        prototypes(torch.zeros(4, 2, 2), labels, 2)


def test_separated_classes_are_solved_and_the_interval_shrinks():
    feats, targets = _pool()
    assert episode_accuracy(feats, sample_episode(targets, 5, 1, 5, torch.Generator())) == 1.0
    noisy, t = _pool(spread=8.0)
    few, many = evaluate_episodes(noisy, t, 5, 1, 5, 50), evaluate_episodes(noisy, t, 5, 1, 5, 800)
    assert 0.2 < many.mean < 1.0 and many.ci95 < few.ci95
    assert len(many.accuracies) == 800


def test_bad_episode_requests_say_how_to_fix():
    _, targets = _pool(classes=3, per_class=4)
    with pytest.raises(ValueError, match="fewer ways"):
        sample_episode(targets, 4, 1, 1, torch.Generator())
    with pytest.raises(ValueError, match="fewer ways"):
        sample_episode(targets, 2, 3, 2, torch.Generator())
    with pytest.raises(ValueError, match=">= 1"):
        sample_episode(targets, 2, 0, 2, torch.Generator())
