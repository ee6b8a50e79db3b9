"""The learning-rate range test: schedule, early stop, restoring state, and picking a rate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.lr_finder import RangeTest, lr_range_test, smooth_losses, suggest_lr
from tlcourse.nets import Classifier
from tlcourse.surgery import discriminative_groups


def toy(seed: int = 0) -> tuple[nn.Module, DataLoader]:
    """A two-layer Classifier and a loader of 64 separable 2-class points."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=gen)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    backbone = nn.Sequential()
    backbone.add_module("block1", nn.Sequential(nn.Linear(4, 8), nn.ReLU()))
    model = Classifier(backbone, nn.Linear(8, 2))
    return model, DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=gen)


def test_rates_grow_geometrically_and_the_loader_is_cycled():
    model, loader = toy()
    result = lr_range_test(
        model, loader, start_lr=1e-5, end_lr=1e-1, num_steps=20, diverge=1e9, progress=False
    )
    assert len(result.lrs) == 20 > len(loader)  # 4 batches per pass, cycled
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] == pytest.approx(1e-1)
    ratios = np.diff(np.log(result.lrs))
    assert np.allclose(ratios, ratios[0])
    assert len(result.losses) == len(result.raw_losses) == 20


def test_model_and_optimizer_are_restored():
    model, loader = toy()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lr_range_test(model, loader, num_steps=10, optimizer=opt, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert opt.param_groups[0]["lr"] == 0.01 and not opt.state


def test_stops_when_the_loss_explodes():
    model, loader = toy()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    result = lr_range_test(
        model, loader, start_lr=1e-3, end_lr=1e4, num_steps=100, optimizer=opt, progress=False
    )
    assert len(result.lrs) < 100
    assert result.losses[-1] > 4 * min(result.losses) or not np.isfinite(result.losses[-1])


def test_loss_falls_somewhere_and_the_suggestion_lies_inside_the_curve():
    model, loader = toy()
    result = lr_range_test(model, loader, start_lr=1e-4, end_lr=10, num_steps=60, progress=False)
    assert min(result.losses) < result.losses[0]
    for method in ("steepest", "min/10"):
        assert result.lrs[0] / 10 <= result.suggest(method) <= result.lrs[-1]
    fig = result.plot(mark=result.suggest())
    assert fig.axes[0].get_xscale() == "log"


def test_discriminative_groups_keep_their_ratio():
    model, loader = toy()
    groups = discriminative_groups(model, lr=1e-2, factor=0.1)
    opt = torch.optim.AdamW(groups)
    seen = []

    class Spy(torch.optim.AdamW):
        def step(self, closure=None):
            seen.append([g["lr"] for g in self.param_groups])
            return super().step(closure)

    opt = Spy(groups)
    lr_range_test(model, loader, num_steps=5, optimizer=opt, progress=False)
    assert all(hi == pytest.approx(10 * lo) for hi, lo in seen)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-3])


def test_suggest_lr_on_a_known_curve():
    lrs = np.geomspace(1e-6, 1, 61)
    losses = 2.0 - 1.5 / (1 + np.exp(-(np.log10(lrs) + 3) * 3))  # falls fastest at 1e-3
    losses[lrs > 1e-1] += 10 * (np.log10(lrs[lrs > 1e-1]) + 1)  # then explodes
    assert suggest_lr(lrs, losses) == pytest.approx(1e-3, rel=0.3)
    lowest = lrs[np.argmin(losses)]
    assert suggest_lr(lrs, losses, "min/10") == pytest.approx(lowest / 10)
    assert RangeTest(list(lrs), list(losses), list(losses)).suggest() == suggest_lr(lrs, losses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1e-3, 1e-2, 1e-1], [1, 0.5, 2], "valley"), "Unknown method"),
        (([1e-3, 1e-2], [1, 0.5]), ">= 3"),
    ],
)
def test_suggest_lr_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        suggest_lr(*args)


def test_bad_range_and_empty_loader_are_explained():
    model, _ = toy()
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_range_test(model, [], start_lr=1.0, end_lr=1e-3)
    with pytest.raises(ValueError, match="empty"):
        lr_range_test(model, [], num_steps=3, progress=False)


def test_smooth_losses_is_a_bias_corrected_moving_average():
    assert smooth_losses([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])  # no pull to zero
    assert smooth_losses([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 + 1.5) / 0.75])
    assert smooth_losses([1.0, 5.0], 0.0) == [1.0, 5.0]
    model, loader = toy()
    result = lr_range_test(model, loader, num_steps=8, progress=False)
    assert result.losses == pytest.approx(smooth_losses(result.raw_losses, 0.9))
    with pytest.raises(ValueError, match="smoothing"):
        smooth_losses([1.0], 1.0)
