"""The claims of notebooks/03_choosing_a_model.ipynb, checked outside the notebook, with the
notebook's data, sizes and tolerances (quick profile).

1. EfficientNet-Lite0 names the three shipped photographs at 224 px, and fewer at 64 px.
2. On the Greek letters (probe accuracy on validation) both glyph backbones beat EfficientNet-Lite0
   at 64 px by more than 20 points; on the handwritten digits that lead shrinks by more than 20
   points, and every backbone lands within 10 points of random features.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from torch.utils.data import DataLoader

from tlcourse import selection, zoo
from tlcourse.datasets import catalog, splits
from tlcourse.tasks import IMAGE_TASK

pytestmark = pytest.mark.claims
REAL, REAL_SIZE, GLYPH = "efficientnet-lite0", 64, ["glyphnet-s", "glyphnet-m"]
EXPECTED = {"grace_hopper.jpg": "military uniform", "china.jpg": "palace", "flower.jpg": "daisy"}


def photos() -> dict[str, Image.Image]:
    found = {
        "grace_hopper.jpg": Image.open(
            Path(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
        )
    }
    sample = load_sample_images()
    found |= {
        Path(f).name: Image.fromarray(a)
        for f, a in zip(sample.filenames, sample.images, strict=True)
    }
    return {name: img.convert("RGB") for name, img in found.items()}


def correct_top1(model, categories, size: int) -> int:
    transform = selection.preprocessing(REAL, size)
    batch = torch.stack([transform(img) for img in photos().values()])
    with torch.inference_mode():
        top1 = model.eval()(batch).argmax(dim=1)
    return sum(categories[i] == EXPECTED[name] for name, i in zip(photos(), top1, strict=True))


def test_real_network_names_the_photos_at_its_own_size_and_fewer_when_shrunk():
    torch.set_num_threads(1)
    model, categories = zoo.load_imagenet(REAL)
    assert correct_top1(model, categories, 224) == 3
    assert correct_top1(model, categories, REAL_SIZE) < 3


def _cut(dataset, per_class):
    return dataset if per_class is None else splits.few_labels(dataset, per_class, seed=0)


def greek_loaders(transform):
    data = IMAGE_TASK.load("quick", transform=transform)
    return DataLoader(data.train, batch_size=64), DataLoader(_cut(data.val, 40), batch_size=64)


def digit_loaders(transform):
    train = _cut(catalog.load("sklearn-digits", "train", transform), 20)
    return DataLoader(train, batch_size=64), DataLoader(
        catalog.load("sklearn-digits", "val", transform), batch_size=64
    )


@pytest.mark.slow
def test_domain_match_beats_scale_on_greek_letters_not_on_digits():
    torch.set_num_threads(1)
    candidates = [selection.from_zoo(n) for n in GLYPH] + [selection.from_zoo(REAL, size=REAL_SIZE)]
    candidates.append(selection.from_zoo(GLYPH[0], pretrained=False))
    real = candidates[-2].name
    greek, _ = selection.compare_backbones(
        candidates, greek_loaders, latency_repeats=3, progress=False
    )
    digits, _ = selection.compare_backbones(
        candidates, digit_loaders, latency_repeats=3, progress=False
    )
    assert greek.loc[GLYPH, "probe accuracy"].min() > greek.loc[real, "probe accuracy"] + 0.20, (
        greek
    )
    gap_greek = greek.loc[GLYPH, "probe accuracy"].max() - greek.loc[real, "probe accuracy"]
    gap_digits = digits.loc[GLYPH, "probe accuracy"].max() - digits.loc[real, "probe accuracy"]
    assert gap_greek > gap_digits + 0.20, (greek, digits)
    floor = digits["probe accuracy"].iloc[-1]
    assert (digits["probe accuracy"].iloc[:-1] - floor).abs().max() < 0.10, digits
    assert selection.choose_backbone(greek, tolerance=0.01) in GLYPH
