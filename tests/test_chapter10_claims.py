"""The claims of notebooks/10_compression.ipynb, checked outside the notebook.

The same set-up as the notebook (quick profile): glyphnet-m fine-tuned on 20 labelled Greek
glyphs per class for 4 epochs. Then: channel pruning at ratio 0.5 keeps at most half the
parameters and is really faster (latency ratio measured in this run, batch 64); static int8
(PT2E, compiled) makes the weights file at least 3.5x smaller with test accuracy within one
point of fp32.
"""

from __future__ import annotations

import statistics

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import compress, quantize, recipes, zoo
from tlcourse.datasets import catalog, splits
from tlcourse.engine import fit
from tlcourse.repro import seed_everything
from tlcourse.surgery import count_parameters

pytestmark = [pytest.mark.claims, pytest.mark.slow]

DATASET, MODEL, LABELS, EPOCHS, BATCH = "glyphs-greek", "glyphnet-m", 20, 4, 32
VAL_PER_CLASS, TEST_PER_CLASS = 25, 50


def stacked(dataset, per_class: int) -> TensorDataset:
    chosen = splits.labels_per_class_subset(splits.targets_of(dataset), per_class, seed=0)
    dataset = splits.subset(dataset, chosen)
    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return TensorDataset(images, torch.as_tensor(splits.targets_of(dataset)))


def loader(dataset, shuffle=False, batch_size=256):
    gen = torch.Generator().manual_seed(0) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen)


@pytest.fixture(scope="module")
def chapter():
    torch.set_num_threads(1)
    pre = zoo.preprocessing(MODEL)
    train_all = catalog.load(DATASET, "train", pre)
    train = stacked(train_all, LABELS)
    val = stacked(catalog.load(DATASET, "val", pre), VAL_PER_CLASS)
    test = stacked(catalog.load(DATASET, "test", pre), TEST_PER_CLASS)
    seed_everything(0)
    model = zoo.load(MODEL, num_classes=len(train_all.classes))
    batches = loader(train, shuffle=True, batch_size=BATCH)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = recipes.one_cycle(EPOCHS, len(batches))
    fit(
        model,
        batches,
        epochs=EPOCHS,
        optimizer=opt,
        device="cpu",
        progress=False,
        callbacks=[schedule],
    )
    return model.eval(), train, val, test


def test_pruning_half_the_channels_keeps_at_most_half_the_parameters_and_is_faster(chapter):
    model, _, val, _ = chapter
    example = val.tensors[0][:64]
    pruned = compress.prune_channels(model, 0.5, example[:2])
    assert count_parameters(pruned) <= count_parameters(model) / 2
    times = {"dense": [], "pruned": []}
    for _ in range(3):  # in turn: a change of the machine's load hits both alike
        for name, variant in (("dense", model), ("pruned", pruned)):
            row = compress.measure(variant, example, batch_sizes=(64,), warmup=1, repeats=3)
            times[name].append(row["ms_b64"])
    ratio = statistics.median(times["dense"]) / statistics.median(times["pruned"])
    assert ratio > 1.25, times


def test_int8_is_3_5x_smaller_and_within_a_point_on_test(chapter):
    model, train, val, test = chapter
    calibration = [x for x, _ in loader(train, batch_size=64)][:4]
    int8 = quantize.quantize_int8(model, calibration)
    example = val.tensors[0][:64]
    fp32 = compress.measure(model, example, loader=loader(test), batch_sizes=())
    small = compress.measure(int8, example, loader=loader(test), batch_sizes=())
    assert fp32["size_mb"] / small["size_mb"] >= 3.5, (fp32, small)
    assert abs(fp32["accuracy"] - small["accuracy"]) <= 0.01, (fp32, small)
