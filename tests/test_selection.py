"""Unit tests for tlcourse.selection on tiny models (the full-profile code path on fakes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.helpers import blobs, model
from tlcourse import selection


def _loaders(transform):
    train, val = blobs(96, 3, seed=0), blobs(48, 3, seed=1)

    def wrap(ds):
        return TensorDataset(torch.stack([transform(x) for x in ds.tensors[0]]), ds.tensors[1])

    return DataLoader(wrap(train), batch_size=32), DataLoader(wrap(val), batch_size=32)


def test_latency_is_positive_and_restores_mode():
    m = model().backbone.train()
    ms = selection.latency_ms(m, (3, 8, 8), warmup=1, repeats=3)
    assert ms > 0 and m.training
    with pytest.raises(ValueError):
        selection.latency_ms(m, (3, 8, 8), repeats=0)


def test_latency_grows_with_model_size():
    small = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 8))
    big = nn.Sequential(
        nn.Flatten(), nn.Linear(3 * 32 * 32, 4096), nn.ReLU(), nn.Linear(4096, 4096)
    )
    assert selection.latency_ms(big, (3, 32, 32), batch_size=8, repeats=5) > selection.latency_ms(
        small, (3, 32, 32), batch_size=8, repeats=5
    )


def test_compare_backbones_table_on_fakes():
    def identity(x):
        return x

    good = selection.Candidate(
        "mean colour",
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        identity,
        (3, 8, 8),
        "MIT",
    )
    cnn = selection.Candidate("tiny cnn", model().backbone, identity, (3, 8, 8))
    table, feats = selection.compare_backbones(
        [good, cnn], _loaders, latency_repeats=2, device="cpu", progress=False
    )
    assert list(table.index) == ["mean colour", "tiny cnn"]
    assert {"probe accuracy", "parameters (M)", "CPU ms / image", "feature dim", "licence"} <= set(
        table.columns
    )
    assert table.loc["mean colour", "probe accuracy"] > 0.9
    assert table.loc["mean colour", "parameters (M)"] == 0
    assert feats["tiny cnn"]["train"].shape == (96, 16) and feats["tiny cnn"]["val"].shape == (
        48,
        16,
    )
    assert (table["features (s)"] > 0).all()


def test_embed_2d_and_separation():
    x, y = blobs(90, 3).tensors
    feats = x.mean(dim=(2, 3))
    for method in ("pca", "tsne"):
        points = selection.embed_2d(feats, method)
        assert points.shape == (90, 2) and np.isfinite(points).all()
    with pytest.raises(ValueError, match="pca"):
        selection.embed_2d(feats, "umap")
    assert selection.separation(feats, y) > selection.separation(torch.randn(90, 3), y)
    fig = selection.embedding_grid(
        {"a": selection.embed_2d(feats), "b": selection.embed_2d(feats)}, y, ["x", "y", "z"]
    )
    assert len(fig.axes) == 2


def test_choose_backbone_prefers_cheapest_within_tolerance():
    import pandas as pd

    table = pd.DataFrame(
        {
            "probe accuracy": [0.90, 0.895, 0.60],
            "parameters (M)": [20.0, 2.0, 0.5],
            "CPU ms / image": [30.0, 5.0, 1.0],
        },
        index=["big", "small", "random"],
    )
    assert selection.choose_backbone(table) == "small"
    assert selection.choose_backbone(table, tolerance=0.0) == "big"
    assert selection.choose_backbone(table, tolerance=0.0, max_ms=10) == "small"
    with pytest.raises(ValueError, match="max_ms"):
        selection.choose_backbone(table, max_ms=0.1)


@pytest.mark.slow
@pytest.mark.claims
def test_claim_pretrained_backbones_beat_random_floor_and_cached_probe_is_faster():
    """Chapter 03: both course backbones beat the random-weights floor on Greek glyphs by a wide
    margin; chapter 02: a probe on cached features is several times faster than one that runs
    the frozen backbone every epoch, at the same accuracy."""
    import time

    from tests.claims_data import subset
    from tlcourse import zoo
    from tlcourse.engine import evaluate, fit
    from tlcourse.nets import Classifier
    from tlcourse.recipes import feature_loader
    from tlcourse.surgery import freeze

    def loaders(transform):
        def wrap(xy):
            return DataLoader(
                TensorDataset(torch.as_tensor(transform(xy[0])).as_subclass(torch.Tensor), xy[1]),
                batch_size=256,
            )

        return wrap(subset("glyphs-greek", "train", 10)), wrap(subset("glyphs-greek", "val", 20))

    candidates = [
        selection.from_zoo("glyphnet-s"),
        selection.from_zoo("glyphnet-m"),
        selection.from_zoo("glyphnet-s", pretrained=False),
    ]
    table, feats = selection.compare_backbones(
        candidates, loaders, latency_repeats=3, device="cpu", progress=False
    )
    floor = table["probe accuracy"].iloc[-1]
    assert (table["probe accuracy"].iloc[:-1] > floor + 0.3).all(), table
    assert selection.choose_backbone(table) in ("glyphnet-s", "glyphnet-m")

    train, val = feats["glyphnet-s"]["train"], feats["glyphnet-s"]["val"]
    x, y = subset("glyphs-greek", "train", 10)
    inputs = torch.as_tensor(zoo.preprocessing("glyphnet-s")(x)).as_subclass(torch.Tensor)
    torch.manual_seed(0)
    model = Classifier(zoo.load_backbone("glyphnet-s"), nn.Linear(train.shape[1], 24))
    freeze(model.backbone)
    start = time.perf_counter()
    fit(
        model,
        DataLoader(TensorDataset(inputs, y), batch_size=64, shuffle=True),
        epochs=6,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    in_loop = time.perf_counter() - start
    torch.manual_seed(0)
    head = nn.Linear(train.shape[1], 24)
    start = time.perf_counter()
    from tlcourse.recipes import extract_features

    cached = extract_features(
        zoo.load_backbone("glyphnet-s"),
        DataLoader(TensorDataset(inputs, y), batch_size=64),
        device="cpu",
    )
    fit(
        head,
        feature_loader(*cached, batch_size=64),
        epochs=6,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    assert in_loop / (time.perf_counter() - start) > 2.0
    val_loader = feature_loader(val, feats["glyphnet-s"]["val_y"], shuffle=False)
    assert evaluate(head, val_loader, device="cpu")["accuracy"] > 0.5
