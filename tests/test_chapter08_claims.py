"""The claims of notebooks/08_fusion_and_distillation.ipynb, checked outside the notebook.

The same set-up as the notebook (quick profile): scikit-learn digits with 10 labels per class,
five fine-tunes of glyphnet-s from one linear-probe start, a glyphnet-m probe, and a student
distilled from their ensemble with the teacher's soft targets on 60 unlabelled images per class.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader

from tlcourse import distill, fusion, recipes, surgery, zoo
from tlcourse.datasets import catalog, splits
from tlcourse.engine import fit, predict
from tlcourse.repro import seed_everything

pytestmark = [pytest.mark.claims, pytest.mark.slow]

DATASET, LABELS, UNLABELLED, EPOCHS, BATCH, LR = "sklearn-digits", 10, 60, 8, 32, 1e-3
INGREDIENTS = [(LR, 0), (LR, 1), (LR, 2), (3e-3, 3), (3e-4, 4)]
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)


def loader(dataset, shuffle=False, seed=0, batch_size=256):
    gen = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=gen)


@pytest.fixture(scope="module")
def chapter():
    torch.set_num_threads(1)
    pre = zoo.preprocessing("glyphnet-s")
    train_all = catalog.load(DATASET, "train", pre)
    targets = splits.targets_of(train_all)
    labelled = splits.labels_per_class_subset(targets, LABELS, seed=0)
    rest = np.setdiff1d(np.arange(len(train_all)), labelled)
    pool_idx = rest[splits.labels_per_class_subset(targets[rest], UNLABELLED, seed=1)]
    d = {
        "train": splits.subset(train_all, labelled),
        "pool": splits.subset(train_all, pool_idx),
        "val": catalog.load(DATASET, "val", pre),
        "test": catalog.load(DATASET, "test", pre),
    }
    y = {k: torch.as_tensor(splits.targets_of(v)) for k, v in d.items()}
    classes = len(train_all.classes)

    def probe_head(name):
        seed_everything(0)
        model = zoo.load(name, num_classes=classes)
        feats = recipes.extract_features(model.backbone, loader(d["train"]), device="cpu")[0]
        opt = torch.optim.AdamW(model.head.parameters(), lr=1e-2, weight_decay=1e-4)
        fit(model.head, recipes.feature_loader(feats, y["train"]), epochs=40, optimizer=opt,
            progress=False)  # fmt: skip
        return model

    start, medium = probe_head("glyphnet-s"), probe_head("glyphnet-m")
    finetunes = []
    for lr, seed in INGREDIENTS:
        model = copy.deepcopy(start)
        surgery.unfreeze(model)
        batches = loader(d["train"], shuffle=True, seed=seed, batch_size=BATCH)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        fit(model, batches, epochs=EPOCHS, optimizer=opt,
            callbacks=[recipes.one_cycle(EPOCHS, len(batches))], progress=False)  # fmt: skip
        finetunes.append(model)
    steps = EPOCHS * len(loader(d["train"], batch_size=BATCH))
    return d, y, start, medium, finetunes, steps


def logits_of(model, dataset):
    return predict(model, loader(dataset))[0]


def test_the_ensemble_beats_its_best_member_on_val_and_its_average_member_on_test(chapter):
    d, y, _, _, finetunes, _ = chapter
    acc = {}
    for split in ("val", "test"):
        members = [logits_of(m, d[split]) for m in finetunes]
        ensemble = fusion.accuracy(fusion.average_probabilities(members), y[split])
        acc[split] = ensemble, [fusion.accuracy(m, y[split]) for m in members]
    ensemble_val, members_val = acc["val"]
    ensemble_test, members_test = acc["test"]
    chosen = int(np.argmax(members_val))  # the member validation picks
    assert ensemble_val > max(members_val)
    assert ensemble_test > np.mean(members_test) + 0.01
    assert ensemble_test >= members_test[chosen] - 0.01


def test_the_greedy_soup_is_at_least_the_best_ingredient_on_val_at_one_pass(chapter):
    d, y, _, _, finetunes, _ = chapter

    def score(model):
        return fusion.accuracy(logits_of(model, d["val"]), y["val"])

    soup, kept = fusion.greedy_soup(finetunes, score)
    assert score(soup) >= max(score(m) for m in finetunes)
    assert surgery.count_parameters(soup) == surgery.count_parameters(finetunes[0])
    assert len(kept) >= 1


def test_averaging_fine_tunes_of_different_starts_collapses(chapter):
    d, y, start, _, finetunes, _ = chapter
    other = copy.deepcopy(fusion.permute_channels(start, seed=1))
    batches = loader(d["train"], shuffle=True, seed=1, batch_size=BATCH)
    opt = torch.optim.AdamW(other.parameters(), lr=LR, weight_decay=1e-4)
    fit(other, batches, epochs=EPOCHS, optimizer=opt,
        callbacks=[recipes.one_cycle(EPOCHS, len(batches))], progress=False)  # fmt: skip

    def score(model):
        return fusion.accuracy(logits_of(model, d["val"]), y["val"])

    shared = score(fusion.interpolate(finetunes[0], finetunes[1], 0.5))
    different = score(fusion.interpolate(finetunes[0], other, 0.5))
    assert shared >= min(score(finetunes[0]), score(finetunes[1])) - 0.02
    assert different < 0.5 * min(score(finetunes[0]), score(other))


def test_the_distilled_student_beats_the_student_alone_at_the_same_budget(chapter):
    d, y, start, medium, finetunes, steps = chapter

    def teacher(split):
        logits = [logits_of(m, d[split]) for m in [*finetunes, medium]]
        return fusion.average_probabilities(logits).log()

    transfer = ConcatDataset(
        [
            distill.WithTeacher(d["train"], teacher("train")),
            distill.WithTeacher(d["pool"], teacher("pool"), labelled=False),
        ]
    )

    def student(temperature, seed):
        model = copy.deepcopy(start)
        batches = loader(transfer, shuffle=True, seed=seed, batch_size=BATCH)
        distill.fit_student(model, batches, steps=steps, lr=LR, temperature=temperature,
                            alpha=0.9, progress=False)  # fmt: skip
        return model

    sweep = {t: student(t, 0) for t in TEMPERATURES}
    val_acc = {t: fusion.accuracy(logits_of(m, d["val"]), y["val"]) for t, m in sweep.items()}
    best = max(val_acc, key=val_acc.get)  # chosen on validation
    students = [sweep[best], student(best, 1), student(best, 2)]
    distilled = [fusion.accuracy(logits_of(m, d["test"]), y["test"]) for m in students]
    alone = [fusion.accuracy(logits_of(m, d["test"]), y["test"]) for m in finetunes[:3]]
    assert all(k > a for k, a in zip(distilled, alone, strict=True)), (distilled, alone)
