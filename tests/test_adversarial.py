"""FGSM / PGD against their definitions, on tiny models."""

import pytest
import torch
from torch import nn

from tlcourse.adversarial import Normalized, fgsm, pgd, robust_accuracy


def _linear_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))


def _batch(seed: int = 1, n: int = 8):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 4, 4, generator=gen), torch.randint(0, 5, (n,), generator=gen)


def test_fgsm_is_one_signed_step_clipped():
    model, (x, y) = _linear_model(), _batch()
    x_req = x.clone().requires_grad_(True)
    nn.functional.cross_entropy(model(x_req), y).backward()
    expected = (x + 0.05 * x_req.grad.sign()).clamp(0, 1)
    assert torch.allclose(fgsm(model, x, y, eps=0.05), expected)


def test_attacks_stay_in_the_ball_and_in_pixel_range():
    model, (x, y) = _linear_model(), _batch()
    for adv in (fgsm(model, x, y, 0.1), pgd(model, x, y, 0.1, 0.03, 7)):
        assert adv.min() >= 0 and adv.max() <= 1
        assert (adv - x).abs().max() <= 0.1 + 1e-6


def test_pgd_one_full_step_without_random_start_is_fgsm():
    model, (x, y) = _linear_model(), _batch()
    assert torch.allclose(
        pgd(model, x, y, 0.05, 0.05, 1, random_start=False), fgsm(model, x, y, 0.05)
    )


def test_attacks_leave_model_gradients_alone():
    model, (x, y) = _linear_model(), _batch()
    pgd(model, x, y, 0.05, 0.01, 3)
    assert all(p.grad is None for p in model.parameters())


def test_pgd_hurts_at_least_as_much_as_fgsm():
    torch.manual_seed(0)
    x = torch.rand(256, 3, 4, 4)
    y = (x[:, 0].mean((1, 2)) > 0.5).long()
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 2))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    loader = [(x, y)]
    clean = robust_accuracy(model, loader)
    acc_fgsm = robust_accuracy(model, loader, fgsm, eps=0.1)
    acc_pgd = robust_accuracy(model, loader, pgd, eps=0.1, step=0.025, steps=10)
    assert clean > 0.9 and acc_pgd <= acc_fgsm < clean


def test_normalized_is_normalise_then_model():
    model, (x, _) = _linear_model(), _batch()
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    manual = model((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    assert torch.allclose(Normalized(model, mean, std)(x), manual, atol=1e-6)


@pytest.mark.parametrize(
    ("images", "eps", "message"),
    [
        (torch.randint(0, 255, (2, 3, 4, 4), dtype=torch.uint8), 0.1, "ToDtype"),
        (torch.randn(2, 3, 4, 4) * 3, 0.1, "Normalized"),
        (torch.rand(2, 3, 4, 4), 8.0, "8/255"),
    ],
)
def test_bad_pixels_say_how_to_fix(images, eps, message):
    with pytest.raises((TypeError, ValueError), match=message):
        fgsm(_linear_model(), images, torch.zeros(2, dtype=torch.long), eps)
