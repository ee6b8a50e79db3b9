"""The claims of notebooks/04_image_finetuning.ipynb, checked outside the notebook.

Fast claims run on tiny models; the ones that need the course backbone on the shared image
task (``tlcourse.tasks.IMAGE_TASK``) are marked slow. The full-profile code path (ResNet-18 on
Oxford-IIIT Pets) runs on a fake Pets tree with random weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import augment, recipes, surgery, zoo
from tlcourse.callbacks import Checkpoint, SimulatedInterrupt
from tlcourse.datasets import images
from tlcourse.engine import evaluate, fit, predict
from tlcourse.lr_finder import lr_range_test
from tlcourse.metrics import most_confident_mistakes
from tlcourse.nets import tiny_cnn
from tlcourse.repro import seed_everything
from tlcourse.tasks import IMAGE_TASK

pytestmark = pytest.mark.claims


def toy_data(n: int = 96) -> TensorDataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 12, 12, generator=gen)
    return TensorDataset(x, (x[:, 0].mean((1, 2)) > 0).long())


def toy_model() -> nn.Module:
    seed_everything(0)
    return tiny_cnn(num_classes=2, width=8)


# ------------------------------------------------------------------------- fast claims


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    """Checkpoint + discriminative groups + one-cycle: crash after epoch 2 of 4, resume, same weights."""
    data = toy_data()

    def run(path, extra=()):
        model = toy_model()
        opt = torch.optim.AdamW(surgery.discriminative_groups(model, lr=1e-2, factor=0.3))
        loader = DataLoader(
            data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        history = fit(
            model,
            loader,
            epochs=4,
            optimizer=opt,
            progress=False,
            callbacks=[recipes.one_cycle(4, len(loader)), Checkpoint(path), *extra],
        )
        return model, history

    straight, h1 = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", [SimulatedInterrupt(2)])
    resumed, h2 = run(tmp_path / "b.pt")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)
    assert h1.series("train_loss") == pytest.approx(h2.series("train_loss"), abs=1e-6)
    assert len(h2) == 4


@pytest.mark.parametrize(("mode", "changes"), [("eval", False), ("train", True)])
def test_a_frozen_backbone_changes_only_with_train_mode_batchnorm(mode, changes):
    model = toy_model()
    surgery.freeze(model.backbone)

    def stats() -> torch.Tensor:
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        return torch.cat([m.running_mean for m in bns]).clone()

    before, weights = stats(), [p.clone() for p in model.backbone.parameters()]
    fit(
        model,
        DataLoader(toy_data(), batch_size=8),
        epochs=1,
        lr=1e-2,
        frozen_bn=mode,
        progress=False,
    )
    assert all(torch.equal(w, p) for w, p in zip(weights, model.backbone.parameters(), strict=True))
    assert (not torch.equal(before, stats())) is changes


# ------------------------------------------------------------- the chapter's task (slow)


@pytest.fixture(scope="module")
def task():
    torch.manual_seed(0)
    data = IMAGE_TASK.load("quick")
    loaders = {
        "train": DataLoader(
            data.train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
        ),
        "val": DataLoader(data.val, batch_size=256),
    }
    return data, loaders


def new_model(num_classes: int) -> nn.Module:
    seed_everything(IMAGE_TASK.seed)
    return zoo.load(IMAGE_TASK.backbone, num_classes=num_classes)


def range_test_lr(model: nn.Module, loader: DataLoader) -> float:
    groups = surgery.discriminative_groups(model, lr=1.0, factor=0.3)
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    curve = lr_range_test(
        model, loader, start_lr=1e-5, end_lr=1.0, num_steps=60, optimizer=opt, progress=False
    )
    assert min(curve.losses) < 0.8 * curve.losses[0]
    return curve.suggest()


@pytest.mark.slow
def test_regimes_land_close_and_the_range_test_lr_matters(task):
    """The notebook's table (validation): probe and full fine-tuning within 5 points; tuned lr
    beats lr=1e-3 by > 5 points."""
    data, loaders = task
    num_classes = len(data.classes)
    lr = range_test_lr(new_model(num_classes), loaders["train"])
    assert 1e-4 <= lr <= 0.3
    probe = new_model(num_classes)
    recipes.linear_probe(probe, loaders["train"], epochs=40, lr=1e-2, progress=False)
    tuned, untuned = new_model(num_classes), new_model(num_classes)
    recipes.fine_tune(tuned, loaders["train"], epochs=6, lr=lr, head_epochs=1, progress=False)
    recipes.fine_tune(untuned, loaders["train"], epochs=6, lr=1e-3, head_epochs=1, progress=False)
    acc = {
        name: evaluate(m, loaders["val"])["accuracy"]
        for name, m in (("probe", probe), ("tuned", tuned), ("untuned", untuned))
    }
    assert surgery.count_parameters(probe, trainable=True) < surgery.count_parameters(
        tuned, trainable=True
    )
    assert min(acc["probe"], acc["tuned"]) > 0.6 and abs(acc["tuned"] - acc["probe"]) < 0.05, acc
    assert acc["tuned"] > acc["untuned"] + 0.05, acc


@pytest.mark.slow
def test_eval_mode_batchnorm_beats_train_mode_on_a_frozen_backbone_over_three_seeds(task):
    """The notebook: batches of 4, frozen backbone; eval-mode BatchNorm better on average."""
    data, loaders = task
    gain = []
    for seed in (0, 1, 2):
        acc = {}
        for mode in ("train", "eval"):
            seed_everything(seed)
            model = zoo.load(IMAGE_TASK.backbone, num_classes=len(data.classes))
            surgery.freeze(model.backbone)
            gen = torch.Generator().manual_seed(seed)
            tiny_batches = DataLoader(data.train, batch_size=4, shuffle=True, generator=gen)
            fit(model, tiny_batches, epochs=2, lr=1e-2, frozen_bn=mode, progress=False)
            acc[mode] = evaluate(model, loaders["val"])["accuracy"]
        gain.append(acc["eval"] - acc["train"])
    assert np.mean(gain) > 0, gain


def fine_tune_by_hand(model, loader, *, epochs, lr, head_epochs=1, factor=0.3):
    """The two-stage loop of the notebook (BatchNorm in train mode in stage 2), on the CPU."""
    surgery.freeze(model.backbone)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(head_epochs):
        model.train()
        surgery.set_bn_eval(model)
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    surgery.unfreeze(model)
    groups = surgery.discriminative_groups(model, lr=lr / 2, factor=factor)
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[g["lr"] for g in groups], total_steps=epochs * len(loader)
    )
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model


def test_recipe_fine_tune_is_the_two_stage_loop_by_hand():
    """The notebook: recipes.fine_tune ends with the same weights as the loop written out."""
    loader = lambda: DataLoader(  # noqa: E731
        toy_data(), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    by_hand = fine_tune_by_hand(toy_model(), loader(), epochs=2, lr=3e-3)
    recipe = toy_model()
    recipes.fine_tune(
        recipe, loader(), epochs=2, lr=3e-3, head_epochs=1, device="cpu", progress=False
    )
    pairs = zip(by_hand.state_dict().values(), recipe.state_dict().values(), strict=True)
    assert max((a.float() - b.float()).abs().max().item() for a, b in pairs) < 1e-6


# ------------------------------------------------------------- full profile, on a fake


@pytest.mark.slow
def test_full_profile_code_path_on_fake_pets(tmp_path, monkeypatch):
    """ResNet-18 (random weights) on a tiny fake Pets tree through the chapter's calls."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for breed in ("beagle", "pug", "sphynx"):
            (tmp_path / split / breed).mkdir(parents=True)
            for i in range(2):
                size = (int(rng.integers(60, 90)), int(rng.integers(60, 90)), 3)
                Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(
                    tmp_path / split / breed / f"{i}.jpg"
                )
    monkeypatch.setattr(images, "prepare_pets", lambda **kw: tmp_path)
    name = IMAGE_TASK.backbone_for("full")
    augmenting = augment.for_backbone(zoo.entry(name), train=True)
    data = IMAGE_TASK.load("full", train_transform=augmenting)  # resize + crop to 224
    assert data.train[0][0].shape == (3, 224, 224) and len(data.classes) == 3
    train = DataLoader(
        data.train, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    test = DataLoader(data.test, batch_size=6)

    def new():
        seed_everything(0)
        return zoo.load(name, num_classes=3, pretrained=False)

    model = new()
    recipes.linear_probe(model, train, epochs=1, progress=False)
    model = new()
    surgery.freeze_blocks(model, len(surgery.blocks(model)) - 1)
    assert [n for n, p in model.named_parameters() if p.requires_grad][0].startswith(
        "backbone.block4"
    )
    fit(model, train, epochs=1, callbacks=[recipes.one_cycle(1, len(train))], progress=False)
    curve = lr_range_test(model, train, num_steps=3, progress=False)
    assert len(curve.lrs) == 3
    recipes.fine_tune(model, train, epochs=1, head_epochs=1, progress=False)
    logits, targets = predict(model, test)
    assert logits.shape == (6, 3)
    assert len(most_confident_mistakes(logits, targets, k=4)) <= 4
