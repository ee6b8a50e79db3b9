"""L2-SP and LwF against their formulas."""

import pytest
import torch
from torch.nn import functional as F

from tlcourse.nets import tiny_cnn
from tlcourse.regularize import L2SPLoss, l2sp_penalty, lwf_loss, snapshot


def test_l2sp_is_zero_at_the_start_except_for_the_head():
    torch.manual_seed(0)
    model = tiny_cnn(4)
    start = snapshot(model)
    head_sq = sum(p.pow(2).sum() for p in model.head.parameters())
    assert torch.isclose(l2sp_penalty(model, start, alpha=3.0, beta=0.5), 0.25 * head_sq)


def test_l2sp_matches_formula_after_a_move():
    torch.manual_seed(0)
    model = tiny_cnn(4)
    start = snapshot(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    pre = sum(
        (p - start[n]).pow(2).sum() for n, p in model.named_parameters() if not n.startswith("head")
    )
    head = sum(p.pow(2).sum() for p in model.head.parameters())
    expected = 0.01 / 2 * pre + 0.2 / 2 * head
    assert torch.isclose(l2sp_penalty(model, start, 0.01, 0.2), expected, rtol=1e-5)


def test_l2sp_gradient_pulls_towards_start():
    torch.manual_seed(0)
    model = tiny_cnn(4)
    start = snapshot(model)
    w = model.backbone.stem[0].weight
    with torch.no_grad():
        w.add_(1.0)
    l2sp_penalty(model, start, 2.0, 0.0).backward()
    assert torch.allclose(w.grad, 2.0 * (w - start["backbone.stem.0.weight"]))


def test_l2sp_loss_adds_penalty_to_cross_entropy():
    torch.manual_seed(0)
    model = tiny_cnn(3)
    loss = L2SPLoss(model, alpha=0.1, beta=0.1)
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    logits = model(x)
    expected = F.cross_entropy(logits, y) + l2sp_penalty(model, loss.start, 0.1, 0.1)
    assert torch.isclose(loss(logits, y), expected)
    assert not any(m is model for m in loss.modules())  # the model is not a submodule of the loss


def test_l2sp_bad_input():
    model = tiny_cnn(3)
    with pytest.raises(KeyError, match="snapshot"):
        l2sp_penalty(model, {}, 1.0, 1.0)
    with pytest.raises(ValueError, match="negative"):
        l2sp_penalty(model, snapshot(model), -1.0, 1.0)


def test_lwf_is_cross_entropy_when_old_outputs_are_kept():
    torch.manual_seed(0)
    new, old = torch.randn(6, 4), torch.randn(6, 7)
    y = torch.randint(0, 4, (6,))
    assert torch.isclose(lwf_loss(new, y, old, old.clone()), F.cross_entropy(new, y), atol=1e-6)


def test_lwf_distillation_term_formula():
    torch.manual_seed(0)
    new, old, rec = torch.randn(5, 3), torch.randn(5, 6), torch.randn(5, 6)
    y = torch.randint(0, 3, (5,))
    t = 3.0
    p, q = F.softmax(rec / t, 1), F.log_softmax(old / t, 1)
    kl = (p * (p.log() - q)).sum(1).mean()
    expected = F.cross_entropy(new, y) + 0.5 * t * t * kl
    assert torch.isclose(lwf_loss(new, y, old, rec, temperature=t, weight=0.5), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="same old head"):
        lwf_loss(new, y, old, rec[:, :3])
