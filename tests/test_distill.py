"""tlcourse.distill against Hinton et al.'s formula and against the engine's plain training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import distill, recipes
from tlcourse.engine import fit
from tlcourse.nets import tiny_cnn


def test_kd_loss_is_t_squared_kl_per_example():
    s, t, temp = torch.randn(8, 5), torch.randn(8, 5), 3.0
    p = torch.softmax(t / temp, -1)
    manual = (p * (p.log() - torch.log_softmax(s / temp, -1))).sum(-1).mean() * temp**2
    assert torch.allclose(distill.kd_loss(s, t, temp), manual, atol=1e-6)


@pytest.mark.filterwarnings("ignore:reduction")
def test_kd_loss_is_not_the_mean_reduction_bug():
    s, t = torch.randn(8, 5), torch.randn(8, 5)
    wrong = F.kl_div(torch.log_softmax(s, -1), torch.softmax(t, -1), reduction="mean")
    assert torch.allclose(distill.kd_loss(s, t, 1.0), wrong * 5)  # "mean" also divides by C


def test_kd_loss_is_zero_when_student_matches_teacher_and_only_the_student_gets_gradients():
    t = torch.randn(4, 3)
    assert float(distill.kd_loss(t.clone(), t, 2.0)) == pytest.approx(0.0, abs=1e-6)
    s, t = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    distill.kd_loss(s, t, 2.0).backward()
    assert s.grad is not None and t.grad is None


def test_t_squared_keeps_the_gradient_scale_across_temperatures():
    torch.manual_seed(0)
    s, t = torch.randn(64, 10) * 0.1, torch.randn(64, 10) * 0.1  # logits small next to T
    norms = []
    for temp in (2.0, 8.0):
        x = s.clone().requires_grad_(True)
        distill.kd_loss(x, t, temp).backward()
        norms.append(float(x.grad.norm()))
    # high-T limit: grad = (s - t) / (N * C) * ... independent of T, so the norms agree
    assert norms[1] == pytest.approx(norms[0], rel=0.1)
    x = s.clone().requires_grad_(True)
    (distill.kd_loss(x, t, 8.0) / 64).backward()  # without T^2 the gradient shrinks by T^2
    assert float(x.grad.norm()) < norms[0] / 10


def test_kd_loss_checks_its_input():
    with pytest.raises(ValueError, match="temperature"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), 0.0)
    with pytest.raises(ValueError, match="same shape"):
        distill.kd_loss(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)


def test_distillation_loss_mixes_both_terms_and_skips_unlabelled():
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    y = torch.tensor([0, distill.UNLABELLED, 2, distill.UNLABELLED])
    ce = F.cross_entropy(s[[0, 2]], y[[0, 2]])
    kd = distill.kd_loss(s, t, 2.0)
    mixed = distill.distillation_loss(s, t, y, temperature=2.0, alpha=0.25)
    assert torch.allclose(mixed, 0.25 * kd + 0.75 * ce)
    assert torch.allclose(distill.distillation_loss(s, t, y, temperature=2.0, alpha=0.0), ce)
    none = torch.full((4,), distill.UNLABELLED)
    assert torch.allclose(
        distill.distillation_loss(s, t, none, temperature=2.0, alpha=0.5), 0.5 * kd
    )
    with pytest.raises(ValueError, match="alpha"):
        distill.distillation_loss(s, t, y, temperature=2.0, alpha=1.5)


def toy() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 3, 8, 8, generator=g)
    return TensorDataset(x, (x[:, 0].mean((1, 2)) > 0).long())


def test_with_teacher_adds_logits_and_can_hide_labels():
    data, logits = toy(), torch.randn(48, 2)
    x, y, t = distill.WithTeacher(data, logits)[3]
    assert torch.equal(x, data[3][0]) and y == data[3][1] and torch.equal(t, logits[3])
    assert distill.WithTeacher(data, logits, labelled=False)[3][1] == distill.UNLABELLED
    with pytest.raises(ValueError, match="One row of teacher logits"):
        distill.WithTeacher(data, logits[:10])


def test_alpha_zero_is_exactly_fit_with_a_one_cycle_schedule():
    """The student-alone baseline of the chapter: same steps, same weights as engine.fit."""
    data = toy()
    torch.manual_seed(0)
    start = tiny_cnn(num_classes=2, width=4)
    a, b = copy.deepcopy(start), copy.deepcopy(start)

    def batches(dataset):
        return DataLoader(
            dataset, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1)
        )

    loader = batches(data)
    opt = torch.optim.AdamW(a.parameters(), lr=1e-2, weight_decay=1e-4)
    fit(
        a,
        loader,
        epochs=3,
        optimizer=opt,
        callbacks=[recipes.one_cycle(3, len(loader))],
        progress=False,
    )
    with_teacher = distill.WithTeacher(data, torch.zeros(48, 2))
    history = distill.fit_student(
        b, batches(with_teacher), steps=3 * len(loader), lr=1e-2, alpha=0.0, progress=False
    )
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.allclose(pa.float(), pb.float(), atol=1e-6)
    assert len(history) == 3


def test_a_student_learns_a_teachers_function_from_unlabelled_images():
    data = toy()
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    torch.manual_seed(0)
    with torch.no_grad():
        logits = teacher(data.tensors[0]) * 3
    student = nn.Sequential(nn.Flatten(), nn.Linear(192, 2))
    loader = DataLoader(
        distill.WithTeacher(data, logits, labelled=False), batch_size=16, shuffle=True
    )
    with torch.no_grad():
        before = float(distill.kd_loss(student(data.tensors[0]), logits, 2.0))
    distill.fit_student(
        student, loader, steps=60, lr=0.05, temperature=2.0, alpha=1.0, progress=False
    )
    with torch.no_grad():
        after = float(distill.kd_loss(student(data.tensors[0]), logits, 2.0))
    agree = (student(data.tensors[0]).argmax(-1) == logits.argmax(-1)).float().mean()
    assert after < 0.5 * before and agree > 0.9


def test_fit_student_checks_its_input():
    with pytest.raises(ValueError, match="steps"):
        distill.fit_student(nn.Linear(2, 2), [], steps=0, lr=1e-3)
    with pytest.raises(ValueError, match="empty"):
        distill.fit_student(nn.Linear(2, 2), [], steps=3, lr=1e-3)
