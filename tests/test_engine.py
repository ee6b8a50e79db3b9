import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import surgery
from tlcourse.callbacks import Checkpoint
from tlcourse.engine import History, NonFiniteLossError, evaluate, fit, predict

from helpers import blobs, loader, model


def test_fit_learns_and_records_history():
    m = model()
    history = fit(m, loader(), epochs=5, lr=1e-2, val_loader=loader(seed=1, shuffle=False))
    assert isinstance(history, History) and len(history) == 5
    assert history.series("epoch") == [1, 2, 3, 4, 5]
    assert history.last("train_loss") < history.series("train_loss")[0]
    assert history.last("val_accuracy") > 0.8
    assert {"train_accuracy", "val_loss", "lr", "time"} <= history.keys()


def test_evaluate_and_predict_shapes():
    m = model()
    logits, targets = predict(m, loader(n=40, shuffle=False))
    assert logits.shape == (40, 3) and targets.shape == (40,)
    result = evaluate(m, loader(n=40, shuffle=False))
    assert set(result) == {"loss", "accuracy"} and 0 <= result["accuracy"] <= 1


def test_predict_restores_training_mode():
    m = model().train()
    predict(m, loader(n=8))
    assert m.training


def test_labels_outside_class_count_name_the_fix():
    m = model(num_classes=2)
    with pytest.raises(ValueError, match=r"outside the model's 2 classes.*replace_head"):
        fit(m, loader(num_classes=3), epochs=1)


def test_fully_frozen_model_names_the_fix():
    m = surgery.freeze(model())
    with pytest.raises(ValueError, match=r"no trainable parameters.*unfreeze"):
        fit(m, loader(), epochs=1)


def test_empty_loader_for_predict():
    with pytest.raises(ValueError, match="empty"):
        predict(model(), [])


def test_frozen_batchnorm_statistics_stay_put():
    m = model()
    surgery.freeze(m, "backbone")
    before = m.backbone.stem[1].running_mean.clone()
    fit(m, loader(), epochs=1)
    assert torch.equal(before, m.backbone.stem[1].running_mean)
    fit(m, loader(), epochs=1, frozen_bn="train")
    assert not torch.equal(before, m.backbone.stem[1].running_mean)


def test_custom_loss_and_optimizer_are_used():
    m = model()
    opt = torch.optim.SGD(m.parameters(), lr=0.0)
    before = [p.clone() for p in m.parameters()]
    fit(m, loader(), epochs=1, optimizer=opt, loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1))
    assert all(torch.equal(a, b) for a, b in zip(before, m.parameters(), strict=True))


def test_progress_bar_quiet_in_tests(capsys):
    fit(model(), loader(n=32), epochs=1)
    captured = capsys.readouterr()
    assert "fit" not in captured.err


# ------------------------------------------------ precision, accumulation, clipping, batch loss


def _linear(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))


def test_gradient_accumulation_matches_one_big_batch():
    """Two micro-batches of 8 with accumulate=2 take the same SGD step as one batch of 16."""
    data = loader(n=16, shuffle=False, batch_size=16)
    micro = loader(n=16, shuffle=False, batch_size=8)
    big, small = _linear(), _linear()
    fit(big, data, epochs=1, optimizer=torch.optim.SGD(big.parameters(), lr=0.5))
    fit(small, micro, epochs=1, optimizer=torch.optim.SGD(small.parameters(), lr=0.5), accumulate=2)
    for a, b in zip(big.parameters(), small.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    plain = _linear()
    fit(plain, micro, epochs=1, optimizer=torch.optim.SGD(plain.parameters(), lr=0.5))
    assert not torch.allclose(plain[1].weight, small[1].weight, atol=1e-6)  # two steps differ


def test_gradient_clipping_bounds_the_step():
    m = _linear()
    before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
    data = loader(n=8, batch_size=8)
    fit(m, data, epochs=1, optimizer=torch.optim.SGD(m.parameters(), lr=1.0), clip_grad=1e-3)
    after = torch.cat([p.detach().flatten() for p in m.parameters()])
    assert 0 < (after - before).norm() <= 1e-3 * (1 + 1e-4)


def test_mixed_precision_on_cpu_uses_bfloat16_autocast():
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = _linear()

        def forward(self, x):
            out = self.net(x)
            seen.append(out.dtype)
            return out

    history = fit(Probe(), loader(n=32), epochs=2, lr=1e-2, mixed_precision=True, device="cpu")
    assert seen and all(d == torch.bfloat16 for d in seen)
    assert history.last("train_loss") < history.series("train_loss")[0]
    fit(Probe(), loader(n=8), epochs=1, device="cpu")
    assert seen[-1] == torch.float32  # off by default


def test_batch_loss_sees_the_whole_batch():
    """Distillation-style: the loader also yields teacher logits; the loss uses them."""
    x, y = blobs(32).tensors
    teacher = torch.nn.functional.one_hot(y, 3).float() * 5
    data = DataLoader(TensorDataset(x, y, teacher), batch_size=8)
    sizes = []

    def distill(logits, batch):
        sizes.append(len(batch))
        soft = torch.nn.functional.softmax(batch[2], dim=1)
        return torch.nn.functional.cross_entropy(logits, soft)

    history = fit(model(), data, epochs=3, lr=1e-2, batch_loss=distill)
    assert set(sizes) == {3} and history.last("train_accuracy") > 0.5


def test_nan_loss_stops_before_the_weights_change_and_keeps_the_checkpoint(tmp_path):
    m = model()
    path = tmp_path / "run.pt"
    fit(m, loader(), epochs=1, lr=1e-2, callbacks=[Checkpoint(path)])
    saved, weights = path.read_bytes(), {k: v.clone() for k, v in m.state_dict().items()}
    calls = []

    def explodes(logits, y):
        calls.append(1)
        loss = nn.functional.cross_entropy(logits, y)
        return loss * float("nan") if len(calls) == 3 else loss

    with pytest.raises(
        NonFiniteLossError, match=r"nan at epoch 2, step 7 \(batch 3\).*lower learning rate"
    ):
        fit(m, loader(), epochs=3, lr=1e-2, loss_fn=explodes, callbacks=[Checkpoint(path)])
    assert path.read_bytes() == saved  # the last good checkpoint is intact
    changed = any(not torch.equal(weights[k], v) for k, v in m.state_dict().items())
    assert changed  # the two good steps did train
    fit(model(), loader(), epochs=1, callbacks=[Checkpoint(path)])  # and it still loads


def test_fit_hand_loop_interchangeable():
    """fit with defaults does what the tutorial loop does (same data order, same optimizer)."""
    a, b = _linear(), _linear()
    data = loader(n=32, shuffle=False, batch_size=8)
    fit(a, data, epochs=1, optimizer=torch.optim.SGD(a.parameters(), lr=0.1))
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    for xb, yb in data:
        loss = nn.functional.cross_entropy(b(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_on_cuda_uses_fp16_and_a_grad_scaler():
    m = model().cuda()
    history = fit(m, loader(n=64), epochs=3, lr=1e-2, mixed_precision=True, device="cuda")
    assert history.last("train_loss") < history.series("train_loss")[0]


def test_several_inputs_reach_the_model_as_a_tuple():
    """A multi-input model (e.g. fusion) gets x = (image, extra) as the loader gives it."""

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.net, self.extra = _linear(), nn.Linear(2, 3)

        def forward(self, x):
            image, extra = x
            return self.net(image) + self.extra(extra)

    x, y = blobs(32).tensors
    data = DataLoader(TensorDataset(x, torch.randn(32, 2), y), batch_size=8)
    pairs = [((xb, eb), yb) for xb, eb, yb in data]
    history = fit(TwoInputs(), pairs, epochs=2, lr=1e-2)
    assert len(history) == 2
    logits, _ = predict(TwoInputs(), pairs)
    assert logits.shape == (32, 3)
