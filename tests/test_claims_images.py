"""Claim: with few labels, transfer from a course backbone beats training from scratch by far.

With 5 labels per class on ``glyphs-digits`` a linear probe and fine-tuning of ``glyphnet-s``
(pretrained on Latin letters) each beat the same architecture trained from scratch by >= 15
accuracy points, and the gap shrinks as labels grow (5 -> 50 per class).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn

from tlcourse import zoo
from tlcourse.backbones import GLYPH_MEAN, GLYPH_STD
from tlcourse.datasets import images, splits
from tlcourse.engine import evaluate, fit, predict
from tlcourse.repro import seed_everything

BACKBONE, TARGET = "glyphnet-s", "glyphs-digits"
BATCH, TEST_PER_CLASS = 50, 50
FINETUNE_STEPS = 60  # a pretrained backbone adapts quickly ...


def scratch_steps(k: int) -> int:
    """... a random one needs more steps the more labels it sees (150 at 50 per class)."""
    return max(40, 3 * k)


def _loaders(k: int, seed: int):
    train = images.load_tensors(TARGET, "train")
    test = images.load_tensors(TARGET, "test")
    train = train.subset(splits.labels_per_class_subset(train.targets, k, seed))
    test = test.subset(splits.labels_per_class_subset(test.targets, TEST_PER_CLASS, 0))
    make = lambda ds, **kw: images.tensor_loader(ds, GLYPH_MEAN, GLYPH_STD, batch_size=BATCH, **kw)  # noqa: E731
    return make(train, shuffle=True, seed=seed), make(test), len(train.classes)


def linear_probe(k: int, seed: int) -> float:
    """Frozen pretrained features + logistic regression: test accuracy."""
    train_loader, test_loader, _ = _loaders(k, seed)
    backbone = zoo.load_backbone(BACKBONE)
    features = [predict(backbone, loader, device="cpu") for loader in (train_loader, test_loader)]
    (x_tr, y_tr), (x_te, y_te) = [(f.numpy(), y.numpy()) for f, y in features]
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(x_tr, y_tr)
    return float((clf.predict(x_te) == y_te).mean())


def train_model(k: int, seed: int, pretrained: bool) -> float:
    """Fine-tune (pretrained) or train from scratch (random weights): test accuracy."""
    train_loader, test_loader, num_classes = _loaders(k, seed)
    seed_everything(seed)
    model = zoo.load(BACKBONE, num_classes, pretrained=pretrained)
    lr_backbone, lr_head = (1e-4, 1e-2) if pretrained else (3e-3, 3e-3)
    groups = [
        {"params": model.backbone.parameters(), "lr": lr_backbone},
        {"params": model.head.parameters(), "lr": lr_head},
    ]
    steps = FINETUNE_STEPS if pretrained else scratch_steps(k)
    fit(
        model,
        train_loader,
        epochs=max(1, steps // len(train_loader)),
        optimizer=torch.optim.AdamW(groups, weight_decay=1e-4),
        loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1),
        device="cpu",
        progress=False,
    )
    return evaluate(model, test_loader, device="cpu")["accuracy"]


def measure(k: int, seed: int) -> dict[str, float]:
    """Test accuracies of the three ways at ``k`` labels per class."""
    return {
        "probe": linear_probe(k, seed),
        "finetune": train_model(k, seed, pretrained=True),
        "scratch": train_model(k, seed, pretrained=False),
    }


@pytest.mark.claims
@pytest.mark.timeout(300)
def test_transfer_beats_scratch_with_few_labels_and_gap_shrinks(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    spec = images.GLYPH_SETS[TARGET]  # 50 train / 50 test images per class are enough here
    monkeypatch.setitem(
        images.GLYPH_SETS, TARGET, images.GlyphSet(spec.chars, (50, 1, 50), spec.role)
    )
    few, many = measure(5, seed=0), measure(50, seed=0)
    print(f"5/class: {few}\n50/class: {many}")
    assert few["probe"] - few["scratch"] >= 0.15, few
    assert few["finetune"] - few["scratch"] >= 0.15, few
    gap = lambda r: max(r["probe"], r["finetune"]) - r["scratch"]  # noqa: E731
    assert gap(many) < gap(few), (few, many)
    assert np.isfinite(list(few.values())).all()
