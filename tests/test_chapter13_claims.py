"""The claims of notebooks/13_export_and_deployment.ipynb, checked outside the notebook.

glyphnet-s fine-tuned briefly on glyph digits (as in the notebook, fewer labels): a run stopped,
saved as safetensors and continued in new objects ends bit for bit where the unstopped run does,
while continuing from the weights alone does not; its ONNX export (preprocessing inside, batch 2)
agrees with PyTorch within 1e-4 on the whole test split and gives the same test accuracy; a .pt2
exported from a slice of the test images carries the whole split (its example inputs' storage), a
copy does not.
"""

from __future__ import annotations

import pytest
import torch

from tlcourse import engine, export, zoo
from tlcourse.datasets import catalog, splits
from tlcourse.datasets.imagefolder import tensor_loader
from tlcourse.repro import seed_everything

pytestmark = pytest.mark.claims
BACKBONE, DATASET, EPOCHS = "glyphnet-s", "glyphs-digits", 2


@pytest.fixture(scope="module")
def task():
    train = catalog.load(DATASET, "train")
    train = train.subset(splits.labels_per_class_subset(train.targets, 10, seed=0))
    return train, catalog.load(DATASET, "test"), zoo.entry(BACKBONE)


def _start(task):
    train, _, entry = task
    seed_everything(0)
    model = zoo.load(BACKBONE, num_classes=len(train.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loader = tensor_loader(train, entry.mean, entry.std, batch_size=32, shuffle=True, seed=0)
    return model, optimizer, loader


def test_stopped_saved_continued_equals_unstopped(task, tmp_path):
    straight, opt, loader = _start(task)
    engine.fit(straight, loader, epochs=EPOCHS, optimizer=opt, progress=False)
    first, opt, loader = _start(task)
    engine.fit(first, loader, epochs=1, optimizer=opt, progress=False)
    path = export.save_state(tmp_path / "half.safetensors", first, opt, loader.generator)
    results = {}
    for with_optimizer in (True, False):
        model, opt, loader = _start(task)
        export.load_state(path, model, opt if with_optimizer else None, loader.generator)
        engine.fit(model, loader, epochs=EPOCHS - 1, optimizer=opt, progress=False)
        results[with_optimizer] = model
    pairs = list(
        zip(straight.state_dict().values(), results[True].state_dict().values(), strict=True)
    )
    assert all(torch.equal(a, b) for a, b in pairs)
    gap = max(
        (a.double() - b.double()).abs().max().item()
        for a, b in zip(
            straight.state_dict().values(), results[False].state_dict().values(), strict=True
        )
    )
    assert gap > 1e-3


def test_onnx_with_preprocessing_matches_pytorch_on_test(task, tmp_path):
    train, test, entry = task
    model, opt, loader = _start(task)
    engine.fit(model, loader, epochs=EPOCHS, optimizer=opt, progress=False)
    deployable = export.WithPreprocessing(model, entry.mean, entry.std).eval()
    meta = export.image_metadata(train.classes, entry.input_size)
    path = export.to_onnx(deployable, test.images[:2], tmp_path / "digits.onnx", metadata=meta)
    parity = export.check_parity(deployable, path, test.images, atol=1e-4)
    assert parity.same_prediction == 1.0
    onnx_logits = export.run_artefact(path, test.images)
    with torch.no_grad():
        torch_logits = deployable(test.images).numpy()
    truth = test.targets.numpy()
    assert (onnx_logits.argmax(-1) == truth).mean() == (torch_logits.argmax(-1) == truth).mean()


def test_pt2_carries_the_storage_of_its_example_inputs(task, tmp_path):
    """A .pt2 stores its example inputs: a two-image slice of the test split ships all of it."""
    train, test, entry = task
    seed_everything(0)
    model = zoo.load(BACKBONE, num_classes=len(train.classes))
    deployable = export.WithPreprocessing(model, entry.mean, entry.std).eval()
    sizes = {}
    for name, example in (("view", test.images[:2]), ("copy", test.images[:2].clone())):
        path = tmp_path / f"{name}.pt2"
        export.to_torch_export(deployable, example, path)
        sizes[name] = path.stat().st_size
    weights = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert sizes["copy"] < 1.5 * weights
    assert sizes["view"] - sizes["copy"] >= 0.9 * test.images.numel()  # uint8: one byte each
