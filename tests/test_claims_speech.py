"""Claim (chapter 06): with 5 labels per keyword, the course's audio backbone - as a linear probe
and fine-tuned - beats the same architecture trained from scratch by >= 15 accuracy points."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tlcourse.datasets.speech import logmel_tensors, speech_dataset
from tlcourse.datasets.splits import labels_per_class_subset
from tlcourse.engine import fit
from tlcourse.models.kwsnet import kwsnet
from tlcourse.models.kwsnet import load_backbone as load_kwsnet_backbone
from tlcourse.nets import Classifier

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def keyword_features():
    """Log-mels of the keyword train pool and test split (noise drawn once, from fixed seeds)."""
    train = logmel_tensors(speech_dataset("speech-keywords", "train", seed=0)).tensors
    test = logmel_tensors(speech_dataset("speech-keywords", "test", seed=1)).tensors
    return train, test


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def train_few_shot(model: nn.Module, x, y, *, lr: float, epochs: int, seed: int) -> nn.Module:
    """Train every parameter of ``model`` on the few labelled clips (full batch of all of them)."""
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=len(y), shuffle=True
    )
    fit(model, loader, epochs=epochs, lr=lr, device="cpu", progress=False)
    return model


def linear_probe(backbone: nn.Module, x, y, x_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    backbone.eval()
    with torch.no_grad():
        f, f_test = backbone(x).numpy(), backbone(x_test).numpy()
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(f, y.numpy())
    return float((clf.predict(f_test) == y_test.numpy()).mean())


def compare(features, labels_per_class: int, seeds=SEEDS, epochs: int = 40) -> dict[str, float]:
    """Mean test accuracy of linear probe, fine-tuning and scratch over ``seeds``."""
    (x_pool, y_pool), (x_test, y_test) = features
    pretrained = load_kwsnet_backbone()
    scores = {"probe": [], "finetune": [], "scratch": []}
    for seed in seeds:
        idx = labels_per_class_subset(y_pool.tolist(), labels_per_class, seed).tolist()
        x, y = x_pool[idx], y_pool[idx]
        scores["probe"].append(linear_probe(pretrained, x, y, x_test, y_test))
        torch.manual_seed(seed)
        tuned = Classifier(copy.deepcopy(pretrained), nn.Linear(128, 10))
        scores["finetune"].append(
            accuracy(train_few_shot(tuned, x, y, lr=1e-3, epochs=epochs, seed=seed), x_test, y_test)
        )
        torch.manual_seed(seed)
        scratch = kwsnet(num_classes=10)
        scores["scratch"].append(
            accuracy(
                train_few_shot(scratch, x, y, lr=3e-3, epochs=epochs, seed=seed), x_test, y_test
            )
        )
    return {k: float(np.mean(v)) for k, v in scores.items()}


@pytest.mark.claims
def test_pretrained_audio_backbone_beats_scratch_with_5_labels_per_class(keyword_features):
    result = compare(keyword_features, labels_per_class=5)
    print(f"\nspeech, 5 labels per class: {result}")
    assert result["probe"] >= result["scratch"] + 0.15, result
    assert result["finetune"] >= result["scratch"] + 0.15, result
