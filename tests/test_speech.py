"""Spoken-word data: the shipped clips, the Speech Commands layout, the dataset and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tlcourse.audio import AudioFormatError
from tlcourse.datasets import catalog
from tlcourse.datasets.speech import (
    NOISE_KINDS,
    SpeechCommands,
    SpeechDataError,
    logmel_tensors,
    manifest,
    prepare,
    speech_dataset,
    synth_noise,
    words_of,
)
from tlcourse.datasets.splits import labels_per_class_subset
from tlcourse.paths import assets_dir


def _fake_speech_commands(root, words=("cat", "dog"), per_word=3, noise=True):
    """A miniature Speech Commands folder: clip k of each word is a tone; speaker k is held out."""
    t = np.arange(16000) / 16000
    for w, word in enumerate(words):
        (root / word).mkdir(parents=True)
        for k in range(per_word):
            tone = 0.3 * np.sin(2 * np.pi * (300 + 100 * w) * t)[: 12000 + 1000 * k]
            sf.write(root / word / f"spk{k}_nohash_0.wav", tone.astype(np.float32), 16000)
    (root / "validation_list.txt").write_text("".join(f"{w}/spk1_nohash_0.wav\n" for w in words))
    (root / "testing_list.txt").write_text("".join(f"{w}/spk2_nohash_0.wav\n" for w in words))
    if noise:
        (root / "_background_noise_").mkdir()
        sf.write(
            root / "_background_noise_" / "white_noise.wav", synth_noise("white_noise", 3.0), 16000
        )
    return root


def test_splits_labels_and_shapes(tmp_path):
    root = _fake_speech_commands(tmp_path / "sc", per_word=4)
    train, val, test = (SpeechCommands(root, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (4, 2, 2)
    assert train.classes == ["cat", "dog"] and sorted(set(train.targets)) == [0, 1]
    wave, label = train[0]
    assert wave.shape == (1, 16000) and label == 0  # short clips are padded to 1 s


def test_noise_is_mixed_at_load_time_and_repeatable(tmp_path):
    root = _fake_speech_commands(tmp_path / "sc")
    clean = SpeechCommands(root, noise_prob=0.0)[0][0]
    noisy = SpeechCommands(root, noise_prob=1.0, seed=1)
    first = noisy[0][0]
    assert not torch.equal(first, clean)
    assert torch.equal(first, SpeechCommands(root, noise_prob=1.0, seed=1)[0][0])
    noisy.set_epoch(1)
    assert not torch.equal(noisy[0][0], first)


def test_words_select_and_order_classes(tmp_path):
    root = _fake_speech_commands(tmp_path / "sc", words=("cat", "dog", "owl"))
    ds = SpeechCommands(root, words=["owl", "cat"])
    assert ds.classes == ["owl", "cat"] and set(ds.targets) == {0, 1}


def test_errors_name_the_fix(tmp_path):
    with pytest.raises(SpeechDataError, match="data prepare"):
        SpeechCommands(tmp_path / "nowhere")
    root = _fake_speech_commands(tmp_path / "sc")
    (root / "emu").mkdir()
    with pytest.raises(SpeechDataError, match="no .wav clips"):
        SpeechCommands(root)
    with pytest.raises(SpeechDataError, match="use one of"):
        SpeechCommands(root, "dev", words=["cat"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpeechDataError, match="no word folders"):
        SpeechCommands(tmp_path / "empty")


def test_a_clip_with_another_rate_says_how_to_resample(tmp_path):
    root = _fake_speech_commands(tmp_path / "sc", noise=False)
    sf.write(root / "cat" / "spk0_nohash_0.wav", np.zeros(8000, dtype=np.float32), 8000)
    with pytest.raises(AudioFormatError, match="-r 16000"):
        SpeechCommands(root, words=["cat"])[0]


def test_synth_noise_kinds():
    for kind in NOISE_KINDS:
        noise = synth_noise(kind, seconds=1.0, seed=0)
        assert noise.shape == (16000,) and noise.dtype == np.float32
        assert abs(np.abs(noise).max() - 0.5) < 1e-6
    spectrum = lambda x: np.abs(np.fft.rfft(x)) ** 2  # noqa: E731
    low = slice(20, 200)  # 20-200 Hz at 1 Hz per bin
    assert spectrum(synth_noise("pink_noise", 1.0))[low].sum() / spectrum(synth_noise("pink_noise", 1.0)).sum() > \
        spectrum(synth_noise("white_noise", 1.0))[low].sum() / spectrum(synth_noise("white_noise", 1.0)).sum()  # fmt: skip
    assert np.array_equal(synth_noise("hum", 1.0, seed=3), synth_noise("hum", 1.0, seed=3))
    with pytest.raises(ValueError, match="use one of"):
        synth_noise("rain")


def test_shipped_clips_are_small_and_consistent():
    info = manifest()
    source, target = info["source_words"], info["target_words"]
    assert len(source) + len(target) >= 30 and not set(source) & set(target)
    size = sum(f.stat().st_size for f in (assets_dir() / "speech").rglob("*") if f.is_file())
    assert size <= 15 * 2**20
    frames = sf.info(str(assets_dir() / "speech" / "clips" / "yes.opus")).frames
    assert frames == 16000 * len(info["clips"]["yes"])


@pytest.fixture(scope="module")
def keywords_root():
    return prepare("speech-keywords")


def test_prepare_writes_the_speech_commands_layout(keywords_root):
    root = keywords_root
    assert sorted(
        p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")
    ) == sorted(words_of("speech-keywords"))
    assert len(list((root / "yes").glob("*.wav"))) == 80
    assert sorted(p.stem for p in (root / "_background_noise_").glob("*.wav")) == sorted(
        NOISE_KINDS
    )
    assert sf.info(str(next((root / "go").glob("*.wav")))).samplerate == 16000
    assert not list(root.parent.glob(".speech-keywords-*"))  # no half-written folder left
    assert prepare("speech-keywords") == root  # reused


def test_splits_share_no_speaker(keywords_root):
    speakers = {}
    for split in ("train", "val", "test"):
        ds = SpeechCommands(keywords_root, split)
        speakers[split] = {p.name.split("_nohash_")[0] for p, _ in ds.samples}
        assert len(ds) > 0
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["val"]


def test_logmel_cache_and_few_shot_subset(keywords_root):
    ds = speech_dataset("speech-keywords", "train")
    idx = labels_per_class_subset(ds.targets, 2, seed=0).tolist()
    cached = logmel_tensors(torch.utils.data.Subset(ds, idx))
    x, y = cached.tensors
    assert x.shape == (20, 1, 40, 101) and torch.bincount(y).tolist() == [2] * 10


def test_catalogue_entries():
    for name, classes in (("speech-words", 30), ("speech-keywords", 10)):
        entry = catalog.info(name)
        assert (
            entry.modality == "speech" and entry.classes == classes and entry.licence == "CC0-1.0"
        )
        for word in ("Origin", "Licence", "Size", "Splits", "Regenerate", "GPL"):
            assert word in entry.datasheet
