"""The claims of notebooks/12_regularisation_and_robustness.ipynb, checked outside the notebook.

The same set-up as the notebook (quick profile): glyphs-cyrillic with 5 labels per class,
glyphnet-s from a linear-probe start, block3 and the head fine-tuned on cached block2 maps for
50 SGD steps; the source task scored with a fixed head on fresh Latin glyphs; FGSM / PGD on 160
test images; 5-way episodes on glyphs-greek.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, default_collate
from torchvision.transforms import v2

from tlcourse import adversarial, fewshot, regularize, surgery, zoo
from tlcourse.callbacks import EarlyStopping
from tlcourse.datasets import catalog, glyphs, splits
from tlcourse.engine import fit
from tlcourse.repro import seed_everything

pytestmark = [pytest.mark.claims, pytest.mark.slow]

TARGET, LABELS, SEEDS, EPOCHS, BATCH, LR_GRID = (
    "glyphs-cyrillic",
    5,
    (0, 1, 2),
    10,
    20,
    (0.003, 0.01, 0.03),
)
KINDS = ("weight decay", "L2-SP", "head dropout", "label smoothing", "mixup", "cutmix", "LLRD",
         "early stopping")  # fmt: skip
MEAN, STD = zoo.entry("glyphnet-s").mean, zoo.entry("glyphnet-s").std


def pixels(dataset):
    return dataset.images.float() / 255, torch.as_tensor(dataset.targets)


@torch.no_grad()
def run_in_batches(module, inputs, size=500):
    module.eval()
    return torch.cat([module(inputs[i : i + size]) for i in range(0, len(inputs), size)])


def accuracy(logits, labels):
    return float((logits.argmax(1) == labels).float().mean())


def fit_linear(feats, labels, classes):
    seed_everything(0)
    head = nn.Linear(feats.shape[1], classes)
    batches = DataLoader(TensorDataset(feats, labels), batch_size=256, shuffle=True,
                         generator=torch.Generator().manual_seed(0))  # fmt: skip
    fit(head, batches, epochs=60, optimizer=torch.optim.AdamW(head.parameters(), lr=1e-2,
        weight_decay=1e-4), device="cpu", progress=False)  # fmt: skip
    return head.eval()


def top_of(model, dropout=0.0):
    head = nn.Sequential(nn.Dropout(dropout), model.head) if dropout else model.head
    return nn.Sequential(model.backbone.block3, model.backbone.pool, head)


def bottom_of(model):
    bb = model.backbone
    return adversarial.Normalized(nn.Sequential(bb.stem, bb.block1, bb.block2), MEAN, STD)


@pytest.fixture(scope="module")
def chapter():
    torch.set_num_threads(1)
    x, y = {}, {}
    train_all = catalog.load(TARGET, "train")
    x["train"], y["train"] = pixels(splits.few_labels(train_all, LABELS, seed=0))
    x["val"], y["val"] = pixels(catalog.load(TARGET, "val"))
    x["test"], y["test"] = pixels(catalog.load(TARGET, "test"))
    latin = glyphs.GLYPH_SETS["glyphs-latin"].chars
    chars = [latin[n] for n in sorted(latin)]
    x["source fit"], y["source fit"] = glyphs.sample(chars, 20, 100)
    x["source"], y["source"] = glyphs.sample(chars, 20, 101)
    classes = len(train_all.classes)
    start = zoo.load("glyphnet-s", num_classes=classes)
    surgery.freeze(start)
    maps = {k: run_in_batches(bottom_of(start), v) for k, v in x.items()}
    trunk = nn.Sequential(start.backbone.block3, start.backbone.pool)
    feats = {k: run_in_batches(trunk, v) for k, v in maps.items()}
    source_head = fit_linear(feats["source fit"], y["source fit"], len(chars))
    surgery.freeze(source_head)
    start.head = fit_linear(feats["train"], y["train"], classes)
    surgery.unfreeze(start.backbone.block3)
    surgery.unfreeze(start.head)
    source_before = accuracy(source_head(feats["source"]), y["source"])
    return {"x": x, "y": y, "maps": maps, "feats": feats, "start": start, "classes": classes,
            "source_head": source_head, "source_before": source_before}  # fmt: skip


def fine_tune(c, kind, seed, lr, alpha=0.01):
    seed_everything(seed)
    model = copy.deepcopy(c["start"])
    top = top_of(model, 0.3 if kind == "head dropout" else 0.0)
    if kind == "BN statistics kept":
        for layer in model.backbone.block3.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum = 0.0
    params = [p for p in model.parameters() if p.requires_grad]
    groups = surgery.discriminative_groups(model, lr, 0.3) if kind == "LLRD" else params
    opt = torch.optim.SGD(groups, lr=lr, momentum=0.9,
                          weight_decay=alpha if kind == "weight decay" else 0.0)  # fmt: skip
    args = {"epochs": EPOCHS, "optimizer": opt, "device": "cpu", "progress": False}
    if kind == "L2-SP":
        args["loss_fn"] = regularize.L2SPLoss(model, alpha=alpha, beta=alpha)
    if kind == "label smoothing":
        args["loss_fn"] = nn.CrossEntropyLoss(label_smoothing=0.1)
    if kind == "early stopping":
        args["val_loader"] = DataLoader(
            TensorDataset(c["maps"]["val"], c["y"]["val"]), batch_size=500
        )
        args["callbacks"] = [EarlyStopping("val_accuracy", mode="max", patience=3)]
    gen = torch.Generator().manual_seed(seed)
    if kind in ("mixup", "cutmix"):
        k = c["classes"]
        mix = (
            v2.MixUp(alpha=0.2, num_classes=k)
            if kind == "mixup"
            else v2.CutMix(alpha=1.0, num_classes=k)
        )
        batches = DataLoader(TensorDataset(c["x"]["train"], c["y"]["train"]), batch_size=BATCH,
                             shuffle=True, generator=gen,
                             collate_fn=lambda b: mix(*default_collate(b)))  # fmt: skip
        fit(nn.Sequential(bottom_of(model), top), batches,
            batch_loss=lambda logits, b: nn.functional.cross_entropy(logits, b[1]), **args)  # fmt: skip
    else:
        batches = DataLoader(TensorDataset(c["maps"]["train"], c["y"]["train"]), batch_size=BATCH,
                             shuffle=True, generator=gen)  # fmt: skip
        fit(top, batches, **args)
    return model


def scores(c, model, which=("val", "test", "source")):
    trunk = nn.Sequential(model.backbone.block3, model.backbone.pool)
    out = {}
    for split in which:
        head = c["source_head"] if split == "source" else model.head
        with torch.no_grad():
            out[split] = accuracy(head(run_in_batches(trunk, c["maps"][split])), c["y"][split])
    return out


@pytest.fixture(scope="module")
def plain(chapter):
    runs = {lr: fine_tune(chapter, "none", 0, lr) for lr in LR_GRID}
    lr = max(LR_GRID, key=lambda r: scores(chapter, runs[r], ("val",))["val"])
    models = {0: runs[lr], **{s: fine_tune(chapter, "none", s, lr) for s in SEEDS[1:]}}
    return lr, models


def test_no_regulariser_gains_more_than_its_spread(chapter, plain):
    lr, models = plain
    base = np.array([scores(chapter, models[s], ("test",))["test"] for s in SEEDS])
    verdicts = {}
    for kind in KINDS:
        acc = np.array(
            [scores(chapter, fine_tune(chapter, kind, s, lr), ("test",))["test"] for s in SEEDS]
        )
        diff = acc - base
        verdicts[kind] = (diff.mean(), diff.std(ddof=1))
    gains = [k for k, (m, s) in verdicts.items() if m > s]
    within = [k for k, (m, s) in verdicts.items() if abs(m) <= s]
    assert set(within) == {"L2-SP", "LLRD", "early stopping"} and not gains, verdicts


def test_forgetting(chapter, plain):
    lr, models = plain
    before = chapter["source_before"]
    lost = {"plain": [], "L2-SP (0.1)": [], "BN statistics kept": []}
    for s in SEEDS:
        lost["plain"].append(before - scores(chapter, models[s], ("source",))["source"])
        for kind, alpha in (("L2-SP", 0.1), ("BN statistics kept", 0.01)):
            model = fine_tune(chapter, kind, s, lr, alpha)
            lost["L2-SP (0.1)" if kind == "L2-SP" else kind].append(
                before - scores(chapter, model, ("source",))["source"]
            )
    plain_lost = np.array(lost["plain"])
    assert (plain_lost > 0.01).all(), lost  # plain forgets; a frozen backbone forgets nothing
    assert (np.abs(np.array(lost["L2-SP (0.1)"]) - plain_lost) < 0.01).all(), lost
    assert (np.array(lost["BN statistics kept"]) < plain_lost / 2).all(), lost


def test_lwf_forgets_less_than_half_of_plain(chapter, plain):
    lr, models = plain
    c, before = chapter, chapter["source_before"]
    for seed in SEEDS:
        seed_everything(seed)
        model = copy.deepcopy(c["start"])
        trunk = nn.Sequential(model.backbone.block3, model.backbone.pool)
        with torch.no_grad():
            recorded = c["source_head"](run_in_batches(trunk, c["maps"]["train"]))
        opt = torch.optim.SGD(
            [p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9
        )
        trunk.train()
        data = TensorDataset(c["maps"]["train"], c["y"]["train"], recorded)
        gen = torch.Generator().manual_seed(seed)
        batches = DataLoader(data, batch_size=BATCH, shuffle=True, generator=gen)
        for _ in range(EPOCHS):
            for m, yb, rec in batches:
                f = trunk(m)
                loss = regularize.lwf_loss(model.head(f), yb, c["source_head"](f), rec, 2.0, 1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
        lwf = before - scores(c, model, ("source",))["source"]
        plain_lost = before - scores(c, models[seed], ("source",))["source"]
        assert lwf < plain_lost / 2, (seed, lwf, plain_lost)


def _pixel_fine_tune(c, lr, eps=None):
    seed_everything(0)
    model = adversarial.Normalized(copy.deepcopy(c["start"]), MEAN, STD)
    surgery.unfreeze(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    data = TensorDataset(c["x"]["train"], c["y"]["train"])
    gen = torch.Generator().manual_seed(0)
    batches = DataLoader(data, batch_size=BATCH, shuffle=True, generator=gen)
    for _ in range(EPOCHS):
        for images, labels in batches:
            if eps is not None:
                model.eval()
                images = adversarial.pgd(model, images, labels, eps, step=1.25 * eps, steps=1)
            model.train()
            loss = nn.functional.cross_entropy(model(images), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def test_pgd_beats_fgsm_and_adversarial_fine_tuning_raises_pgd_accuracy(chapter, plain):
    lr, _ = plain
    eps = 4 / 255
    x, y = pixels(splits.few_labels(catalog.load(TARGET, "test"), 8, seed=0))
    batches = [(x[i : i + 80], y[i : i + 80]) for i in range(0, len(x), 80)]
    models = {"ft": _pixel_fine_tune(chapter, lr), "adv": _pixel_fine_tune(chapter, lr, eps)}
    got = {}
    for name, model in models.items():
        got[name, "clean"] = adversarial.robust_accuracy(model, batches)
        got[name, "fgsm"] = adversarial.robust_accuracy(model, batches, adversarial.fgsm, eps=eps)
        got[name, "pgd"] = adversarial.robust_accuracy(model, batches, adversarial.pgd, eps=eps,
            step=eps / 4, steps=7, generator=torch.Generator().manual_seed(0))  # fmt: skip
        got[name, "pgd 1/255"] = adversarial.robust_accuracy(model, batches, adversarial.pgd,
            eps=1 / 255, step=1 / 255 / 4, steps=7,
            generator=torch.Generator().manual_seed(0))  # fmt: skip
        assert got[name, "pgd"] <= got[name, "fgsm"], got
    assert got["ft", "fgsm"] - got["ft", "pgd"] > 0.05, got
    # the two attacks are closer against the adversarially fine-tuned model
    assert got["adv", "fgsm"] - got["adv", "pgd"] < got["ft", "fgsm"] - got["ft", "pgd"], got
    assert got["adv", "pgd"] - got["ft", "pgd"] > 0.08, got
    assert got["adv", "clean"] < got["ft", "clean"], got
    assert got["adv", "pgd 1/255"] < got["ft", "pgd 1/255"], got  # below the trained eps: a loss


def test_prototypes_on_pretrained_features_beat_pixels_with_separate_intervals():
    x, y = pixels(catalog.load("glyphs-greek", "test"))
    embed = adversarial.Normalized(zoo.load_backbone("glyphnet-s"), MEAN, STD)
    feats = run_in_batches(embed, x)
    one = fewshot.evaluate_episodes(feats, y, 5, 1, 15, 600)
    five = fewshot.evaluate_episodes(feats, y, 5, 5, 15, 600)
    pix = fewshot.evaluate_episodes(x.flatten(1), y, 5, 1, 15, 600)
    assert one.mean - one.ci95 > pix.mean + pix.ci95
    assert five.mean - five.ci95 > one.mean + one.ci95
