"""The zoo: names, loading, preprocessing, checkpoints that refuse the wrong architecture."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from sklearn.linear_model import LogisticRegression

from tlcourse import zoo
from tlcourse.checkpoint import CheckpointMismatchError
from tlcourse.datasets import catalog, imagefolder, images
from tlcourse.engine import predict
from tlcourse.models import glyphnet, imagenet
from tlcourse.nets import Classifier
from tlcourse.surgery import count_parameters


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def offline(monkeypatch):
    """Any download attempt fails as it would without a network."""

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def _shrink(monkeypatch, name: str, per_class: tuple[int, int, int]) -> None:
    spec = images.GLYPH_SETS[name]
    monkeypatch.setitem(images.GLYPH_SETS, name, images.GlyphSet(spec.chars, per_class, spec.role))


def test_unknown_name_suggests_the_closest():
    with pytest.raises(KeyError, match="Did you mean 'glyphnet-s'"):
        zoo.entry("glyphnet_s")
    with pytest.raises(KeyError, match="resnet18"):
        zoo.load("resnet-18", 3)


def test_registry_lists_one_module_per_family():
    assert all(family.__name__.startswith("tlcourse.models.") for family in zoo.FAMILIES)
    names = [name for family in zoo.FAMILIES for name in family.ZOO]
    assert len(names) == len(set(names)) == len(zoo.entries())


def test_course_backbones_are_shipped_small_and_described():
    for name in ("glyphnet-s", "glyphnet-m"):
        path = glyphnet.weights_path(name)
        assert path.is_file() and path.stat().st_size <= 10e6
        assert set(load_file(str(path))) == set(glyphnet.glyphnet_backbone(name).state_dict())
        card = zoo.card(name)
        assert "Source accuracy" in card and "Build time" in card and "Licence" in card


def test_load_gives_a_classifier_with_a_fresh_head_and_matching_preprocessing():
    model = zoo.load("glyphnet-s", num_classes=7)
    assert isinstance(model, Classifier) and model.num_classes == 7
    assert [n for n, _ in model.backbone.named_children()] == [
        "stem",
        "block1",
        "block2",
        "block3",
        "pool",
    ]
    transform = zoo.preprocessing("glyphnet-s")
    pixels = np.full((32, 32, 3), 255, dtype=np.uint8)
    from_pil = transform(Image.fromarray(pixels))
    from_tensor = transform(torch.from_numpy(pixels).permute(2, 0, 1))
    assert from_pil.shape == (3, 32, 32) and torch.allclose(from_pil, from_tensor)
    expected = (1 - torch.tensor(glyphnet.GLYPH_MEAN)) / torch.tensor(glyphnet.GLYPH_STD)
    assert torch.allclose(from_pil[:, 0, 0], expected, atol=1e-5)
    model.eval()
    assert model(torch.stack([from_pil, from_tensor])).shape == (2, 7)


def test_scratch_model_has_the_same_architecture_but_other_weights():
    pretrained, scratch = zoo.load("glyphnet-m", 4), zoo.load("glyphnet-m", 4, pretrained=False)
    assert count_parameters(pretrained) == count_parameters(scratch)
    w = "stem.0.weight"
    assert not torch.equal(pretrained.backbone.state_dict()[w], scratch.backbone.state_dict()[w])
    with pytest.raises(ValueError, match="num_classes"):
        zoo.load("glyphnet-s", 0)


def test_checkpoint_of_another_architecture_names_the_expected_one(tmp_path):
    other = glyphnet.glyphnet_backbone("glyphnet-m")
    path = glyphnet.save_backbone(other, "glyphnet-m", {"epochs": 1}, tmp_path, write_card=False)
    with pytest.raises(
        CheckpointMismatchError, match=r"'glyphnet-m', expected 'glyphnet-s'.*zoo build glyphnet-s"
    ):
        glyphnet.load_backbone("glyphnet-s", path)
    renamed = tmp_path / "glyphnet-s.safetensors"  # right label, wrong tensors
    from safetensors.torch import save_file

    save_file(load_file(str(path)), str(renamed), metadata={"architecture": "glyphnet-s"})
    with pytest.raises(CheckpointMismatchError, match="differ in shape"):
        glyphnet.load_backbone("glyphnet-s", renamed)
    with pytest.raises(FileNotFoundError, match="zoo build glyphnet-s"):
        glyphnet.load_backbone("glyphnet-s", tmp_path / "missing.safetensors")


def test_pretrained_features_beat_random_features(home, monkeypatch):
    _shrink(monkeypatch, "glyphs-digits", (10, 1, 20))
    data = {s: catalog.load("glyphs-digits", s) for s in ("train", "test")}

    def probe(backbone) -> float:
        feats = [predict(backbone, imagefolder.tensor_loader(d, glyphnet.GLYPH_MEAN, glyphnet.GLYPH_STD), device="cpu")
                 for d in data.values()]  # fmt: skip
        clf = LogisticRegression(max_iter=2000).fit(feats[0][0].numpy(), feats[0][1].numpy())
        return float((clf.predict(feats[1][0].numpy()) == feats[1][1].numpy()).mean())

    torch.manual_seed(0)
    pretrained, random = (
        probe(zoo.load_backbone("glyphnet-s")),
        probe(glyphnet.glyphnet_backbone("glyphnet-s")),
    )
    assert pretrained > random + 0.15, (pretrained, random)


def test_build_is_deterministic_given_the_seed(home, monkeypatch, tmp_path):
    _shrink(monkeypatch, "glyphs-latin", (3, 1, 1))
    runs = [glyphnet.train("glyphnet-s", seed=5, out_dir=tmp_path / str(i), epochs=1, progress=False)
            for i in range(2)]  # fmt: skip
    a, b = (load_file(str(tmp_path / str(i) / "glyphnet-s.safetensors")) for i in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    assert "glyphs-latin" in (tmp_path / "0" / "glyphnet-s.md").read_text()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_large"])
def test_torchvision_weights_load_offline_from_the_hub_cache(name, tmp_path, monkeypatch, offline):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    builder, weights, _ = imagenet.MODELS[name]
    torch.manual_seed(1)
    state = builder(weights=None, num_classes=len(weights.meta["categories"])).state_dict()
    path = imagenet.checkpoint_path(name)
    assert path.name == weights.url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    model = zoo.load(name, num_classes=3)
    first = next(iter(model.backbone.state_dict().values()))
    assert torch.equal(first, next(iter(state.values())))
    model.eval()
    x = zoo.preprocessing(name)(torch.zeros(3, 40, 48, dtype=torch.uint8))
    assert x.shape == zoo.entry(name).input_size
    assert model(x[None]).shape == (1, 3)
    assert zoo.size_on_disk(zoo.entry(name)).endswith("MB")


def test_torchvision_offline_without_cache_says_where_to_put_the_file(
    tmp_path, monkeypatch, offline
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(ConnectionError, match=r"resnet18-f37072fd\.pth"):
        zoo.load_backbone("resnet18")


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_b0", "vit_b_16"])
def test_other_torchvision_entries_by_enum(name):
    e = zoo.entry(name)
    _, weights, _ = imagenet.MODELS[name]
    assert e.profile == "full" and e.weights == weights.url and e.input_size == (3, 224, 224)
    assert e.mean == tuple(weights.transforms().mean) and e.num_params == weights.meta["num_params"]


def test_cli_list_card_and_errors(capsys):
    assert zoo.cli_main(["list"]) == 0
    out = capsys.readouterr().out
    assert "glyphnet-s" in out and "resnet18" in out and "MIT" in out and "MB" in out
    assert zoo.cli_main(["card", "glyphnet-m"]) == 0
    assert "# glyphnet-m" in capsys.readouterr().out
    assert zoo.cli_main(["card", "glyphnet"]) == 2
    assert "Did you mean" in capsys.readouterr().out
    assert zoo.cli_main(["build", "resnet18"]) == 2
    assert "not built by the course" in capsys.readouterr().out
