"""Full-profile datasets: real public data, downloaded once with checksums into the cache.

Each ``prepare_*`` function fetches the archives through :mod:`tlcourse.download` (sha256
checked, cached, clear offline message), unpacks them, checks the layout and converts them into
the layout the course loaders already use for the quick profile:

- Oxford-IIIT Pets -> an ImageFolder tree ``train/val/test/<breed>/*.jpg``;
- hymenoptera (ants / bees) -> its own ImageFolder tree ``train/val/{ants,bees}``;
- Speech Commands v0.02 -> its own layout (``<word>/*.wav``, ``validation_list.txt``,
  ``testing_list.txt``, ``_background_noise_/``), the layout of the quick speech data;
- IMDB and SST-2 -> :class:`TextData` ``(texts, labels, classes)`` per split.

Nothing happens at import. Tests run the whole path on miniature fakes in the same archive
layout (``tests/fakes.py``), passing the fakes' resources through the ``resources`` argument.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from tlcourse.datasets.catalog import DatasetInfo
from tlcourse.datasets.imagefolder import MARKER
from tlcourse.download import (
    LayoutError,
    Resource,
    build_atomically,
    fetch_and_extract,
    require_paths,
)
from tlcourse.paths import cache_dir

# --- the resources (checksums and where they were published) ----------------------------------

_TFDS = "tensorflow/datasets"
PETS_RESOURCES = (
    Resource(
        name="images.tar.gz",
        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz",
        sha256="67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
        size=791_918_971,
        mirrors=("https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",),
        source=f"{_TFDS}: tensorflow_datasets/datasets/oxford_iiit_pet/checksums.tsv",
    ),
    Resource(
        name="annotations.tar.gz",
        url="https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz",
        sha256="52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
        size=19_173_078,
        mirrors=("https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz",),
        source=f"{_TFDS}: tensorflow_datasets/datasets/oxford_iiit_pet/checksums.tsv",
    ),
)
HYMENOPTERA_RESOURCE = Resource(
    name="hymenoptera_data.zip",
    url="https://download.pytorch.org/tutorial/hymenoptera_data.zip",
    sha256="fbc41b31d544714d18dd1230b1e2b455e1557766e13e67f9f5a7a23af7c02209",
    source="pytorch/tutorials: .jenkins/download_data.py",
)
SPEECH_COMMANDS_RESOURCE = Resource(
    name="speech_commands_v0.02.tar.gz",
    url="https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    sha256="af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    size=2_428_923_189,
    mirrors=("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",),
    source=f"{_TFDS}: tensorflow_datasets/url_checksums/speech_commands.txt; torchaudio",
)
IMDB_RESOURCE = Resource(
    name="aclImdb_v1.tar.gz",
    url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
    sha256="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
    size=84_125_825,
    mirrors=("http://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",),
    source=f"{_TFDS}: tensorflow_datasets/datasets/imdb_reviews/checksums.tsv",
)
SST2_RESOURCE = Resource(
    name="SST-2.zip",
    url="https://dl.fbaipublicfiles.com/glue/data/SST-2.zip",
    sha256="d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
    size=7_439_277,
    source=f"{_TFDS}: tensorflow_datasets/url_checksums/glue.txt; Transformers.jl DataDeps",
)

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class TextData(NamedTuple):
    """One split of a text dataset: ``texts[i]`` has label ``labels[i]`` in ``classes``."""

    texts: list[str]
    labels: list[int]
    classes: tuple[str, ...]


def _data_dir(name: str) -> Path:
    return cache_dir("data", name)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (no extra disk space), or copy where links are not allowed."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


# --- Oxford-IIIT Pets -------------------------------------------------------------------------


def prepare_pets(
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    resources: tuple[Resource, Resource] = PETS_RESOURCES,
    progress: bool | None = None,
) -> Path:
    """Download Oxford-IIIT Pets and return an ImageFolder root with ``train/val/test/<breed>``.

    ``test`` is the official test split; ``val`` takes ``val_fraction`` of each breed of the
    official trainval split (chosen with ``seed``), ``train`` the rest. 37 breeds.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be between 0 and 1, e.g. 0.2.")
    root = _data_dir("oxford-pets")
    images = fetch_and_extract(resources[0], root / "raw-images", progress=progress) / "images"
    notes = fetch_and_extract(resources[1], root / "raw-annotations", progress=progress)
    notes = notes / "annotations"
    fix = f"Delete {root} and run again to download a fresh copy."
    require_paths(images.parent, ["images"], what="Oxford-IIIT Pets images", fix=fix)
    require_paths(
        notes.parent,
        ["annotations/trainval.txt", "annotations/test.txt"],
        what="Oxford-IIIT Pets annotations",
        fix=fix,
    )
    splits = pets_splits(notes, val_fraction=val_fraction, seed=seed)
    tree = root / f"imagefolder-val{round(val_fraction * 100)}-seed{seed}"
    return build_atomically(tree, lambda tmp: _write_imagefolder(splits, images, tmp))


def read_pets_list(path: Path) -> list[str]:
    """Image names (without ``.jpg``) of a Pets split file (``trainval.txt`` or ``test.txt``).

    Each line reads ``Abyssinian_100 1 1 1`` (image, class id, species, breed id); ``#`` lines
    are comments.
    """
    lines = Path(path).read_text().splitlines()
    return [ln.split()[0] for ln in lines if ln.strip() and not ln.startswith("#")]


def pets_breed(image_name: str) -> str:
    """The breed of a Pets image name: ``"american_bulldog_12"`` -> ``"american_bulldog"``."""
    return image_name.rsplit("_", 1)[0]


def pets_splits(annotations: Path, *, val_fraction: float, seed: int) -> dict[str, list[str]]:
    """Image names per split: the official test split, trainval cut into train and val."""
    by_breed: dict[str, list[str]] = defaultdict(list)
    for name in read_pets_list(Path(annotations) / "trainval.txt"):
        by_breed[pets_breed(name)].append(name)
    rng = random.Random(seed)
    splits: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for breed in sorted(by_breed):
        names = sorted(by_breed[breed])
        rng.shuffle(names)
        n_val = max(1, round(len(names) * val_fraction))
        splits["val"] += names[:n_val]
        splits["train"] += names[n_val:]
    splits["test"] = read_pets_list(Path(annotations) / "test.txt")
    return splits


def _write_imagefolder(splits: dict[str, list[str]], images: Path, out: Path) -> None:
    missing = [n for names in splits.values() for n in names if not (images / f"{n}.jpg").is_file()]
    if missing:
        raise LayoutError(
            f"{len(missing)} images listed in the Pets annotations are not in {images} "
            f"(e.g. {missing[:3]}). Delete {images.parent} and run again."
        )
    for split, names in splits.items():
        for name in names:
            folder = out / split / pets_breed(name)
            folder.mkdir(parents=True, exist_ok=True)
            _link_or_copy(images / f"{name}.jpg", folder / f"{name}.jpg")
    counts = {split: len(names) for split, names in splits.items()}
    (out / MARKER).write_text(json.dumps({"name": "oxford-pets", "images": counts}) + "\n")


# --- hymenoptera (ants / bees) ----------------------------------------------------------------


def prepare_hymenoptera(
    *, resource: Resource = HYMENOPTERA_RESOURCE, progress: bool | None = None
) -> Path:
    """Download the ants / bees folders; return the ImageFolder root with ``train`` and ``val``.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    root = _data_dir("hymenoptera")
    data = fetch_and_extract(resource, root / "raw", progress=progress) / "hymenoptera_data"
    expected = [f"{split}/{cls}" for split in ("train", "val") for cls in ("ants", "bees")]
    require_paths(
        data,
        expected,
        what="The hymenoptera data",
        fix=f"Delete {root} and run again to download a fresh copy.",
    )
    return data


# --- Speech Commands v0.02 --------------------------------------------------------------------


def prepare_speech_commands(
    *, resource: Resource = SPEECH_COMMANDS_RESOURCE, progress: bool | None = None
) -> Path:
    """Download Speech Commands v0.02; return its root (``<word>/*.wav`` and the split lists).

    The same layout as the quick speech data, so the same loaders read both.

    Introduced in notebooks/06_speech_finetuning.ipynb.
    """
    root = _data_dir("speech-commands")
    data = fetch_and_extract(resource, root / "v0.02", progress=progress)
    fix = f"Delete {data} and run again to unpack a fresh copy."
    require_paths(
        data, ["validation_list.txt", "testing_list.txt"], what="Speech Commands", fix=fix
    )
    if not speech_words(data):
        raise LayoutError(f"Speech Commands at {data} has no <word>/*.wav folders. {fix}")
    return data


def speech_words(root: Path) -> list[str]:
    """The word folders of a Speech Commands root (sorted; ``_background_noise_`` excluded)."""
    return sorted(
        p.name
        for p in Path(root).iterdir()
        if p.is_dir() and not p.name.startswith("_") and any(p.glob("*.wav"))
    )


# --- IMDB and SST-2 ---------------------------------------------------------------------------

IMDB_CLASSES = ("neg", "pos")
SST2_CLASSES = ("negative", "positive")


def prepare_imdb(*, resource: Resource = IMDB_RESOURCE, progress: bool | None = None) -> Path:
    """Download the IMDB reviews; return the ``aclImdb`` folder (``train``/``test``, pos/neg).

    Introduced in notebooks/07_text_finetuning.ipynb.
    """
    root = _data_dir("imdb")
    data = fetch_and_extract(resource, root / "raw", progress=progress) / "aclImdb"
    expected = [f"{split}/{cls}" for split in ("train", "test") for cls in IMDB_CLASSES]
    require_paths(
        data,
        expected,
        what="The IMDB reviews",
        fix=f"Delete {root} and run again to download a fresh copy.",
    )
    return data


def load_imdb(
    split: str = "train", *, resource: Resource = IMDB_RESOURCE, progress: bool | None = None
) -> TextData:
    """IMDB reviews of ``split`` (``"train"`` or ``"test"``): labels 0 = neg, 1 = pos.

    HTML line breaks (``<br />``) become spaces. Sorted by label, then file name.

    Introduced in notebooks/07_text_finetuning.ipynb.
    """
    _check_split(split, ("train", "test"), "IMDB")
    data = prepare_imdb(resource=resource, progress=progress)
    texts, labels = [], []
    for label, cls in enumerate(IMDB_CLASSES):
        for path in sorted((data / split / cls).glob("*.txt")):
            texts.append(path.read_text(encoding="utf-8").replace("<br />", " ").strip())
            labels.append(label)
    return TextData(texts, labels, IMDB_CLASSES)


def prepare_sst2(*, resource: Resource = SST2_RESOURCE, progress: bool | None = None) -> Path:
    """Download GLUE SST-2; return the ``SST-2`` folder (``train.tsv``, ``dev.tsv``).

    Introduced in notebooks/07_text_finetuning.ipynb.
    """
    root = _data_dir("sst2")
    data = fetch_and_extract(resource, root / "raw", progress=progress) / "SST-2"
    require_paths(
        data,
        ["train.tsv", "dev.tsv"],
        what="SST-2",
        fix=f"Delete {root} and run again to download a fresh copy.",
    )
    return data


def load_sst2(
    split: str = "train", *, resource: Resource = SST2_RESOURCE, progress: bool | None = None
) -> TextData:
    """SST-2 sentences of ``split`` (``"train"`` or ``"validation"``): 0 = negative, 1 = positive.

    GLUE's test split has no labels, so it is not offered; hold out part of ``train`` instead.

    Introduced in notebooks/07_text_finetuning.ipynb.
    """
    _check_split(split, ("train", "validation"), "SST-2")
    data = prepare_sst2(resource=resource, progress=progress)
    path = data / ("train.tsv" if split == "train" else "dev.tsv")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and not {"sentence", "label"} <= rows[0].keys():
        raise LayoutError(f"{path} lacks the 'sentence' and 'label' columns; delete it and rerun.")
    return TextData(
        [r["sentence"].strip() for r in rows], [int(r["label"]) for r in rows], SST2_CLASSES
    )


def _check_split(split: str, allowed: tuple[str, ...], what: str) -> None:
    if split not in allowed:
        raise ValueError(f"{what} has no split {split!r}; use one of {', '.join(allowed)}.")


# --- the catalogue ----------------------------------------------------------------------------


def _checksums(*resources: Resource) -> str:
    return "\n".join(
        f"  {r.name}: {r.algorithm} {r.checksum} (from {r.source}); {r.url}" for r in resources
    )


PETS_DATASHEET = f"""Oxford-IIIT Pets (full profile)
Origin: Parkhi, Vedaldi, Zisserman and Jawahar, "Cats and Dogs", CVPR 2012; Visual Geometry
  Group, University of Oxford (https://www.robots.ox.ac.uk/~vgg/data/pets/).
Licence: annotations CC BY-SA 4.0; the copyright of the images stays with their owners.
Size: 7,349 photos of 37 breeds (12 cat, 25 dog), about 200 per breed, various sizes;
  792 MB + 19 MB of archives. A handful are not RGB JPEGs: open them with .convert("RGB")
  (torchvision's ImageFolder does).
Classes: 37 breeds, folder names from the file names (e.g. Abyssinian, american_bulldog).
Splits: test = the official test.txt (3,669); the official trainval.txt (3,680) is cut per
  breed into val (20 % by default, seeded) and train.
Layout made: <cache>/data/oxford-pets/imagefolder-val20-seed0/{{train,val,test}}/<breed>/*.jpg
  (hard links to the unpacked images); trimaps and boxes stay in raw-annotations/.
Regenerate: delete <cache>/data/oxford-pets and call prepare_pets() again.
Checksums:
{_checksums(*PETS_RESOURCES)}
"""

HYMENOPTERA_DATASHEET = f"""Hymenoptera: ants and bees (full profile)
Origin: the data of the PyTorch transfer-learning tutorial, a small subset of ImageNet
  (https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html).
Licence: ImageNet images; the copyright stays with their owners (ImageNet terms: non-commercial
  research and education).
Size: about 120 training and 75 validation photos per class.
Classes: 2 (ants, bees).
Splits: train and val as shipped (no test split: hold out part of train if you need one).
Layout: <cache>/data/hymenoptera/raw/hymenoptera_data/{{train,val}}/{{ants,bees}}/*.jpg.
Regenerate: delete <cache>/data/hymenoptera and call prepare_hymenoptera() again.
Checksum:
{_checksums(HYMENOPTERA_RESOURCE)}
"""

SPEECH_COMMANDS_DATASHEET = f"""Speech Commands v0.02 (full profile)
Origin: Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition",
  arXiv:1804.03209 (2018); Google.
Licence: CC BY 4.0.
Size: 105,829 one-second clips (16 kHz mono WAV) of 35 words by 2,618 speakers, plus
  _background_noise_/ (6 long noise recordings); a 2.4 GB archive.
Classes: 35 words (yes, no, up, down, left, right, on, off, stop, go, digits, ...).
Splits: validation_list.txt and testing_list.txt (chosen by a hash of the speaker, so no
  speaker is in two splits); training is every other clip.
Layout: <cache>/data/speech-commands/v0.02/<word>/<speaker>_nohash_<n>.wav, the same layout as
  the course's quick speech data.
Regenerate: delete <cache>/data/speech-commands and call prepare_speech_commands() again.
Checksum:
{_checksums(SPEECH_COMMANDS_RESOURCE)}
"""

IMDB_DATASHEET = f"""IMDB movie reviews (full profile)
Origin: Maas et al., "Learning Word Vectors for Sentiment Analysis", ACL 2011
  (https://ai.stanford.edu/~amaas/data/sentiment/); reviews written on IMDb.
Licence: none stated; the authors ask users to cite the paper. Research and teaching use.
Size: 50,000 labelled reviews (plus 50,000 unlabelled, unused here); an 84 MB archive.
Classes: 2 (neg = 0, pos = 1), balanced; reviews rated <= 4 / 10 or >= 7 / 10.
Splits: train 25,000 and test 25,000 (no film appears in both); hold out part of train as val.
Loading: load_imdb(split) -> TextData(texts, labels, classes); "<br />" becomes a space.
Regenerate: delete <cache>/data/imdb and call prepare_imdb() again.
Checksum:
{_checksums(IMDB_RESOURCE)}
"""

SST2_DATASHEET = f"""SST-2, GLUE version (full profile)
Origin: Socher et al., "Recursive Deep Models for Semantic Compositionality Over a Sentiment
  Treebank", EMNLP 2013; binary version from GLUE (Wang et al., 2018).
Licence: none stated by the authors; research and teaching use.
Size: 67,349 training phrases and sentences, 872 validation sentences (and 1,821 unlabelled
  test sentences, unused); a 7.4 MB archive.
Classes: 2 (negative = 0, positive = 1).
Splits: train and validation (GLUE's dev.tsv); the test split has no labels.
Loading: load_sst2(split) -> TextData(texts, labels, classes).
Regenerate: delete <cache>/data/sst2 and call prepare_sst2() again.
Checksum:
{_checksums(SST2_RESOURCE)}
"""

DATASETS: dict[str, DatasetInfo] = {
    "oxford-pets": DatasetInfo(
        name="oxford-pets", modality="image", profile="full", classes=37,
        size="7,349 photos (792 MB)", licence="CC BY-SA 4.0 (annotations)",
        origin="Oxford VGG cats and dogs, 37 breeds (Parkhi et al., 2012).",
        datasheet=PETS_DATASHEET, prepare=prepare_pets,
    ),
    "hymenoptera": DatasetInfo(
        name="hymenoptera", modality="image", profile="full", classes=2,
        size="~400 photos", licence="ImageNet terms",
        origin="Ants and bees from the PyTorch transfer-learning tutorial (ImageNet subset).",
        datasheet=HYMENOPTERA_DATASHEET, prepare=prepare_hymenoptera,
    ),
    "speech-commands": DatasetInfo(
        name="speech-commands", modality="speech", profile="full", classes=35,
        size="105,829 clips of 1 s (2.4 GB)", licence="CC BY 4.0",
        origin="Google Speech Commands v0.02 (Warden, 2018).",
        datasheet=SPEECH_COMMANDS_DATASHEET, prepare=prepare_speech_commands,
    ),
    "imdb": DatasetInfo(
        name="imdb", modality="text", profile="full", classes=2,
        size="50,000 reviews (84 MB)", licence="none stated (cite Maas et al.)",
        origin="IMDB movie reviews for sentiment (Maas et al., 2011).",
        datasheet=IMDB_DATASHEET, prepare=prepare_imdb,
    ),
    "sst2": DatasetInfo(
        name="sst2", modality="text", profile="full", classes=2,
        size="68,221 sentences (7.4 MB)", licence="none stated",
        origin="Stanford Sentiment Treebank, binary GLUE version (Socher et al., 2013).",
        datasheet=SST2_DATASHEET, prepare=prepare_sst2,
    ),
}  # fmt: skip
