"""tlcourse.fusion against its definitions: voting, soups, vmap ensembles, stacking glue."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from tlcourse import fusion, zoo
from tlcourse.nets import tiny_cnn


def tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = tiny_cnn(num_classes=4, width=4)
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(seed + 3)
    return model.eval()


def test_average_probabilities_is_the_mean_softmax():
    logits = torch.randn(3, 5, 4)
    expected = sum(torch.softmax(logits[i], -1) for i in range(3)) / 3
    assert torch.allclose(fusion.average_probabilities(list(logits)), expected)


def test_average_probabilities_matches_sklearn_soft_voting():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)), rng.integers(0, 3, 60)
    members = [LogisticRegression(C=c).fit(x, y) for c in (0.1, 1.0)]
    logits = [torch.as_tensor(m.predict_log_proba(x)) for m in members]
    expected = np.mean([m.predict_proba(x) for m in members], axis=0)
    assert np.allclose(fusion.average_probabilities(logits).numpy(), expected, atol=1e-6)


def test_majority_vote_counts_votes_and_breaks_ties_by_probability():
    a = torch.tensor([[5.0, 0, 0], [0, 5.0, 0]])
    b = torch.tensor([[4.0, 0, 0], [0, 0, 1.0]])
    c = torch.tensor([[0.0, 3, 0], [0, 0, 1.0]])
    assert fusion.majority_vote([a, b, c]).tolist() == [0, 2]
    tie = fusion.majority_vote([torch.tensor([[2.0, 0]]), torch.tensor([[0.0, 9]])])
    assert tie.tolist() == [1]  # one vote each: the more confident member decides


def test_disagreement_and_accuracy():
    a = torch.tensor([[1.0, 0], [1.0, 0], [0, 1.0], [0, 1.0]])
    b = torch.tensor([[1.0, 0], [0, 1.0], [0, 1.0], [1.0, 0]])
    assert fusion.disagreement(a, b) == 0.5
    assert fusion.accuracy(a, torch.tensor([0, 0, 1, 0])) == 0.75
    with pytest.raises(ValueError, match="same examples"):
        fusion.disagreement(a, b[:3])


def test_vmap_ensemble_equals_a_loop():
    models, x = [tiny(s) for s in range(3)], torch.randn(6, 3, 12, 12)
    with torch.no_grad():
        looped = torch.stack([m(x) for m in models])
    assert torch.allclose(fusion.ensemble_logits(models, x), looped, atol=1e-5)


def test_vmap_ensemble_refuses_mixed_architectures():
    with pytest.raises(ValueError, match="one architecture"):
        fusion.ensemble_logits(
            [tiny(0), tiny_cnn(num_classes=4, width=8)], torch.randn(2, 3, 12, 12)
        )


def test_soup_of_identical_models_is_the_model():
    model, x = tiny(0), torch.randn(5, 3, 12, 12)
    soup = fusion.uniform_soup([model, tiny(0), tiny(0)]).eval()
    assert torch.allclose(soup(x), model(x), atol=1e-6)


def test_uniform_soup_averages_floats_and_copies_integer_buffers():
    a, b = tiny(0), tiny(1)
    soup = fusion.uniform_soup([a, b]).state_dict()
    for key, value in soup.items():
        if value.is_floating_point():
            assert torch.allclose(value, (a.state_dict()[key] + b.state_dict()[key]) / 2)
        else:
            assert value.dtype == torch.int64 and torch.equal(value, a.state_dict()[key])
    assert int(soup["backbone.stem.1.num_batches_tracked"]) == 3  # copied from the first, not 3.5


def test_soup_rejects_mismatched_ingredients():
    with pytest.raises(ValueError, match="does not match"):
        fusion.uniform_soup([tiny(0), tiny_cnn(num_classes=5, width=4)])
    with pytest.raises(ValueError, match="at least one"):
        fusion.uniform_soup([])


def test_greedy_soup_keeps_only_what_helps_and_never_loses_to_the_best():
    models = [tiny(s) for s in range(4)]
    target = models[2].head.weight.detach().clone()

    def score(m):  # higher when the head is closer to ingredient 2's
        return -float((m.head.weight.detach() - target).norm())

    soup, kept = fusion.greedy_soup(models, score)
    assert kept[0] == 2 and kept == [2]  # any average moves the head away from ingredient 2
    assert score(soup) >= max(score(m) for m in models)

    def mean_score(m):  # higher when the head is closer to the mean of all heads
        return -float(
            (m.head.weight - torch.stack([n.head.weight for n in models]).mean(0)).norm().detach()
        )

    _, kept = fusion.greedy_soup(models, mean_score)
    assert sorted(kept) == [0, 1, 2, 3]


def test_interpolate_endpoints():
    a, b, x = tiny(0), tiny(1), torch.randn(3, 3, 12, 12)
    assert torch.allclose(fusion.interpolate(a, b, 0.0).eval()(x), a(x), atol=1e-6)
    assert torch.allclose(fusion.interpolate(a, b, 1.0).eval()(x), b(x), atol=1e-5)


def test_permuted_channels_compute_the_same_function_with_other_weights():
    torch.manual_seed(0)
    model = zoo.load("glyphnet-s", num_classes=5, pretrained=False).eval()
    permuted = fusion.permute_channels(model, seed=1).eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model(x), permuted(x), atol=1e-4)
    assert not torch.equal(model.backbone.stem[0].weight, permuted.backbone.stem[0].weight)


def test_stacking_and_feature_fusion_on_two_feature_blocks():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    a = rng.normal(size=(150, 4)) + y[:, None] * np.array([1.5, 0, 0, 0])  # block a sees class 1
    b = rng.normal(size=(150, 2)) + (y[:, None] == 2) * 2.0  # block b sees class 2
    x = np.concatenate([a, b], 1)
    stack = fusion.stacking_classifier({"a": 4, "b": 2}, cv=3).fit(x[:100], y[:100])
    fused = fusion.feature_fusion_probe().fit(x[:100], y[:100])
    alone = fusion.feature_fusion_probe().fit(a[:100], y[:100])
    assert stack.score(x[100:], y[100:]) > alone.score(a[100:], y[100:]) - 0.05
    assert fused.score(x[100:], y[100:]) >= alone.score(a[100:], y[100:])
    pipe = stack.named_estimators_["b"]
    assert pipe[0].transform(x[:2]).shape == (2, 2)  # each base probe sees only its own block
