"""Bad input never passes quietly: every case below raises an error whose message says what to
do (the regex checks the fix, not just the complaint). The cases are what a learner or a new
user actually gets wrong; see tlcourse/guards.py for the checks and tlcourse/engine.py for fit.
"""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import surgery
from tlcourse.callbacks import EarlyStopping
from tlcourse.engine import NonFiniteLossError, evaluate, fit, predict
from tlcourse.guards import check_num_classes

from helpers import blobs, loader, model


def pairs(x: torch.Tensor, y: torch.Tensor, batch_size: int = 8) -> DataLoader:
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)


X, Y = blobs(16).tensors


def fit1(data, **kwargs):
    return fit(model(), data, **({"epochs": 1} | kwargs))


def empty_generator():
    return iter(())


class Batches:
    """An iterable without a length that yields nothing."""

    def __iter__(self):
        return iter(())


def nan_loss(logits, y):
    return nn.functional.cross_entropy(logits, y) * float("nan")


def inf_loss(logits, y):
    return nn.functional.cross_entropy(logits, y) + float("inf")


CASES = {
    # images
    "uint8 images": (lambda: fit1(pairs((X * 50).clamp(0, 255).to(torch.uint8), Y)), r"ToDtype\(torch.float32, scale=True\)"),
    "1-channel images, RGB model": (lambda: fit1(pairs(X[:, :1], Y)), r"Grayscale\(num_output_channels=3\)"),
    "channels-last images": (lambda: fit1(pairs(X.permute(0, 2, 3, 1), Y)), r"permute\(0, 3, 1, 2\)"),
    "5-channel images": (lambda: fit1(pairs(torch.randn(16, 5, 8, 8), Y)), r"first layer with 5 input channels"),
    "unbatched images": (lambda: fit1([(X[0], Y[:1])]), r"unsqueeze\(1\)|DataLoader"),
    "float64 images": (lambda: fit1(pairs(X.double(), Y)), r"x\.to\(torch\.float32\)"),
    "uint8 images to predict": (lambda: predict(model(), pairs(X.to(torch.uint8), Y)), r"ToDtype"),
    "channels-last to evaluate": (lambda: evaluate(model(), pairs(X.permute(0, 2, 3, 1), Y)), r"permute"),
    # labels
    "float labels": (lambda: fit1(pairs(X, Y.float())), r"y\.long\(\)"),
    "float labels to evaluate": (lambda: evaluate(model(), pairs(X, Y.float())), r"y\.long\(\)"),
    "labels of shape (N, 1)": (lambda: fit1(pairs(X, Y.view(-1, 1))), r"squeeze\(1\)"),
    "label outside the classes": (lambda: fit(model(num_classes=2), loader(num_classes=3), epochs=1), r"replace_head"),
    "x and y of different lengths": (lambda: fit1([(X[:8], Y[:4])]), r"pair them 1:1"),
    # arguments
    "epochs=0": (lambda: fit1(loader(), epochs=0), r"at least one epoch"),
    "epochs=-1": (lambda: fit1(loader(), epochs=-1), r"at least one epoch"),
    "epochs=2.5": (lambda: fit1(loader(), epochs=2.5), r"whole number"),
    "epochs='3'": (lambda: fit1(loader(), epochs="3"), r"whole number"),
    "lr as a string": (lambda: fit1(loader(), lr="1e-3"), r"pass a number, e.g. lr=1e-3"),
    "lr=0": (lambda: fit1(loader(), lr=0), r"positive number"),
    "lr=-0.1": (lambda: fit1(loader(), lr=-0.1), r"positive number"),
    "optimizer class, not instance": (lambda: fit1(loader(), optimizer=torch.optim.SGD), r"optimizer instance"),
    "loss_fn and batch_loss": (lambda: fit1(loader(), loss_fn=nn.CrossEntropyLoss(), batch_loss=lambda lo, b: lo.sum()), r"not both"),
    "one callback, not a list": (lambda: fit1(loader(), callbacks=EarlyStopping()), r"must be a list"),
    "frozen_bn misspelt": (lambda: fit1(loader(), frozen_bn="frozen"), r"'eval'"),
    "accumulate=0": (lambda: fit1(loader(), accumulate=0), r"whole number >= 1"),
    "clip_grad=-1": (lambda: fit1(loader(), clip_grad=-1), r"positive max norm"),
    "not a model": (lambda: fit(lambda x: x, loader(), epochs=1), r"nn\.Module"),
    "every layer frozen": (lambda: fit(surgery.freeze(model()), loader(), epochs=1), r"[Uu]nfreeze"),
    # loaders and batches
    "empty training DataLoader": (lambda: fit1(pairs(X[:0], Y[:0])), r"loader is empty.*split"),
    "empty list of batches": (lambda: fit1([]), r"loader is empty"),
    "empty loader without a length": (lambda: fit1(Batches()), r"loader is empty"),
    "a Dataset, not a DataLoader": (lambda: fit1(blobs(16)), r"DataLoader\(dataset, batch_size=32"),
    "batches of x only": (lambda: fit1([X[:4]]), r"pair \(x, y\)"),
    "x as a list of lists": (lambda: fit1([(X[:2].tolist(), Y[:2])]), r"tensors.*ToImage"),
    "empty loader to predict": (lambda: predict(model(), []), r"loader is empty"),
    # training that goes wrong
    "NaN loss": (lambda: fit1(loader(), loss_fn=nan_loss), r"nan at epoch 1, step 1.*lower learning rate"),
    "infinite loss": (lambda: fit1(loader(), loss_fn=inf_loss), r"inf at epoch 1, step 1.*check the inputs"),
    "NaN in the inputs": (lambda: fit1(pairs(torch.full_like(X, float("nan")), Y)), r"loss is nan.*NaN/inf values"),
    # heads
    "fractional num_classes": (lambda: check_num_classes(2.5, "replace_head"), r"whole number of classes"),
    "num_classes as a string": (lambda: check_num_classes("10"), r"pass a whole number"),
    "num_classes=0": (lambda: check_num_classes(0), r">= 1"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_an_error_that_names_the_fix(name):
    run, fix = CASES[name]
    with pytest.raises((TypeError, ValueError, FloatingPointError)) as info:
        run()
    message = str(info.value)
    assert len(message) > 40, message
    assert re.search(fix, message, flags=re.S), f"{name}: {message}"


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_nan_loss_is_a_floating_point_error_with_its_own_type():
    with pytest.raises(NonFiniteLossError):
        fit1(loader(), loss_fn=nan_loss)


def test_good_input_still_trains():
    history = fit(model(), loader(n=32), epochs=1)
    assert len(history) == 1 and history.last("train_loss") > 0
    assert check_num_classes(3.0) == 3 and check_num_classes(7) == 7


@pytest.mark.parametrize("num_classes", [2.5, "10", 0])
def test_head_builders_check_num_classes(num_classes):
    """zoo.load, surgery.replace_head and nets.tiny_cnn all refuse a class count that is not a whole number >= 1."""
    from tlcourse import nets, surgery, zoo

    builders = [
        lambda n: zoo.load("glyphnet-s", n, pretrained=False),
        lambda n: surgery.replace_head(nets.tiny_cnn(3), n),
        nets.tiny_cnn,
    ]
    for build in builders:
        with pytest.raises((TypeError, ValueError), match="whole number"):
            build(num_classes)
