import pytest
import torch
from torch import nn

from tlcourse import surgery
from tlcourse.engine import History, evaluate, fit, predict

from helpers import loader, model


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
