"""The full-profile loaders (images, speech, text) on miniature fakes in the real archive layouts.

Each test serves a fake archive from 127.0.0.1 and runs the whole path: download -> sha256
check -> extract -> layout check -> conversion into the course layout.
"""

from __future__ import annotations

import re
import shutil

import pytest
from torchvision.datasets import ImageFolder

from tlcourse import download
from tlcourse.datasets import catalog, speech, text
from tlcourse.datasets import images as image_sets
from tlcourse.datasets.imagefolder import check_image_folder
from tlcourse.datasets.info import SPLITS
from tlcourse.datasets.speech import SpeechCommands
from tlcourse.download import LayoutError, OfflineError

from fakes import (
    PET_BREEDS,
    SPEECH_WORDS,
    fake_resource,
    hymenoptera_files,
    imdb_files,
    pets_files,
    serve,
    speech_commands_files,
    sst2_files,
    write_tar,
    write_zip,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(download.OFFLINE_ENV, raising=False)


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "site"
    folder.mkdir()
    with serve(folder) as (base, requests):
        yield folder, base, requests


def test_real_resources_are_checked_with_published_sha256():
    resources = [
        *image_sets.PETS_RESOURCES,
        image_sets.HYMENOPTERA_RESOURCE,
        speech.SPEECH_COMMANDS_RESOURCE,
        text.IMDB_RESOURCE,
        text.SST2_RESOURCE,
    ]
    for res in resources:
        assert re.fullmatch(r"[0-9a-f]{64}", res.sha256), res.name
        assert res.url.startswith("https://") and res.source, res.name


def test_pets_becomes_an_imagefolder(site):
    folder, base, requests = site
    images, notes = pets_files(per_breed=6)
    fakes = (
        fake_resource(
            image_sets.PETS_RESOURCES[0], write_tar(folder / "images.tar.gz", images), base
        ),
        fake_resource(
            image_sets.PETS_RESOURCES[1], write_tar(folder / "annotations.tar.gz", notes), base
        ),
    )
    root = image_sets.prepare_pets(resources=fakes, val_fraction=0.25, progress=False)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["test", "train", "val"]
    counts = {s: len(ImageFolder(str(root / s)).samples) for s in SPLITS}
    assert counts == {"train": 12, "val": 4, "test": 8}  # 4 trainval + 2 test per breed
    assert ImageFolder(str(root / "train")).classes == sorted(PET_BREEDS)
    x, y = ImageFolder(str(root / "val"))[0]
    assert x.size == (8, 8) and y == 0
    assert check_image_folder(root, verify=True) == sorted(PET_BREEDS)  # the course's own check
    assert image_sets.prepare_pets(resources=fakes, val_fraction=0.25, progress=False) == root
    assert len(requests) == 2  # cached: one request per archive


def test_pets_split_is_seeded_and_disjoint(tmp_path):
    _, notes = pets_files(per_breed=10)
    write_tar(tmp_path / "a.tar.gz", notes)
    ann = download.extract(tmp_path / "a.tar.gz", tmp_path / "a") / "annotations"
    a = image_sets.pets_splits(ann, val_fraction=0.25, seed=0)
    assert a == image_sets.pets_splits(ann, val_fraction=0.25, seed=0)
    assert a["val"] != image_sets.pets_splits(ann, val_fraction=0.25, seed=1)["val"]
    assert not set(a["train"]) & set(a["val"]) and not set(a["train"]) & set(a["test"])
    assert image_sets.pets_breed("american_pit_bull_terrier_12") == "american_pit_bull_terrier"


def test_pets_missing_image_is_a_layout_error(site, tmp_path):
    folder, base, _ = site
    images, notes = pets_files()
    del images["images/Bengal_1.jpg"]
    fakes = (
        fake_resource(
            image_sets.PETS_RESOURCES[0], write_tar(folder / "images.tar.gz", images), base
        ),
        fake_resource(
            image_sets.PETS_RESOURCES[1], write_tar(folder / "annotations.tar.gz", notes), base
        ),
    )
    with pytest.raises(LayoutError, match="Bengal_1"):
        image_sets.prepare_pets(resources=fakes, progress=False)
    made = [p.name for p in (tmp_path / "home" / "data" / "oxford-pets").iterdir()]
    assert sorted(made) == ["raw-annotations", "raw-images"]  # no half-built tree


def test_hymenoptera(site):
    folder, base, _ = site
    archive = write_zip(folder / "hymenoptera_data.zip", hymenoptera_files(per_class=3))
    res = fake_resource(image_sets.HYMENOPTERA_RESOURCE, archive, base)
    root = image_sets.prepare_hymenoptera(resource=res, progress=False)
    train = ImageFolder(str(root / "train"))
    assert train.classes == ["ants", "bees"] and len(train) == 6
    assert check_image_folder(root, ("train", "val"), verify=True) == ["ants", "bees"]


def test_hymenoptera_wrong_layout(site):
    folder, base, _ = site
    files = {k.replace("/bees/", "/wasps/"): v for k, v in hymenoptera_files().items()}
    res = fake_resource(image_sets.HYMENOPTERA_RESOURCE, write_zip(folder / "h.zip", files), base)
    with pytest.raises(LayoutError, match="missing train/bees, val/bees.*Delete"):
        image_sets.prepare_hymenoptera(resource=res, progress=False)


def test_speech_commands_keeps_its_layout(site):
    folder, base, _ = site
    archive = write_tar(
        folder / "speech_commands_v0.02.tar.gz", speech_commands_files(), dirs=("./",)
    )
    res = fake_resource(speech.SPEECH_COMMANDS_RESOURCE, archive, base)
    root = speech.prepare_speech_commands(resource=res, progress=False)
    assert speech.speech_words(root) == list(SPEECH_WORDS)
    for listed in (root / "validation_list.txt").read_text().split():
        assert (root / listed).is_file()
    assert (root / "_background_noise_" / "white_noise.wav").is_file()
    val = SpeechCommands(root, "val", noise_prob=0.0)  # the quick profile's loader
    assert val.classes == list(SPEECH_WORDS) and len(val) == 3
    wave, label = val[0]
    assert wave.shape == (1, 16_000) and label == 0


def test_speech_commands_without_split_lists(site):
    folder, base, _ = site
    files = {k: v for k, v in speech_commands_files().items() if "testing_list" not in k}
    res = fake_resource(
        speech.SPEECH_COMMANDS_RESOURCE, write_tar(folder / "s.tar.gz", files), base
    )
    with pytest.raises(LayoutError, match="testing_list.txt"):
        speech.prepare_speech_commands(resource=res, progress=False)


def test_imdb_texts_and_labels(site):
    folder, base, _ = site
    archive = write_tar(folder / "aclImdb_v1.tar.gz", imdb_files(per_class=3))
    res = fake_resource(text.IMDB_RESOURCE, archive, base)
    data = text.load_imdb("test", resource=res, progress=False)
    texts, labels, classes = data.texts, data.labels, data.classes
    assert classes == ("neg", "pos") and labels == [0, 0, 0, 1, 1, 1]
    assert texts[0] == "A awful film  number 0 of test." and "<br" not in " ".join(texts)
    assert len(text.load_imdb("train", resource=res, progress=False).texts) == 6
    with pytest.raises(ValueError, match="use one of train, test"):
        text.load_imdb("unsup", resource=res)


def test_sst2_texts_and_labels(site):
    folder, base, _ = site
    res = fake_resource(text.SST2_RESOURCE, write_zip(folder / "SST-2.zip", sst2_files()), base)
    train = text.load_sst2("train", resource=res, progress=False)
    assert train.labels == [0, 1, 0] and train.texts[1] == 'a "gorgeous" film'
    assert text.load_sst2("val", resource=res, progress=False).labels == [1]
    assert train.classes == ("negative", "positive")


def test_offline_and_not_cached_names_url_checksum_and_place(monkeypatch):
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    with pytest.raises(OfflineError) as err:
        image_sets.prepare_pets(progress=False)
    msg = str(err.value)
    assert image_sets.PETS_RESOURCES[0].url in msg and image_sets.PETS_RESOURCES[0].sha256 in msg
    assert str(download.downloads_dir() / "images.tar.gz") in msg


def test_a_file_copied_by_hand_is_used_offline(tmp_path, monkeypatch):
    archive = write_zip(tmp_path / "SST-2.zip", sst2_files())
    res = fake_resource(text.SST2_RESOURCE, archive, "http://127.0.0.1:9")
    shutil.copy(archive, download.downloads_dir() / "SST-2.zip")
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    assert len(text.load_sst2(resource=res).texts) == 3


def test_catalogue_entries_have_datasheets():
    for name, entry in {
        n: d for n, d in catalog.all_datasets().items() if d.profile == "full"
    }.items():
        assert entry.profile == "full" and entry.name == name
        for word in ("Origin", "Licence", "Size", "Classes", "Splits", "sha256"):
            assert word in entry.datasheet, (name, word)
    assert catalog.info("oxford-pets").prepare is image_sets.prepare_pets
