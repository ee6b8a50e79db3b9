"""tlcourse.speech_transfer: clips in memory, fixed noisy features, models, training, SNR sweep."""

from __future__ import annotations

import pytest
import torch

from tlcourse import speech_transfer as st
from tlcourse.audio import LogMel
from tlcourse.datasets.speech import synth_noise


def _clips(n: int = 8, classes: int = 2) -> st.Clips:
    t = torch.arange(16000) / 16000
    waves = torch.stack(
        [0.3 * torch.sin(2 * torch.pi * (300 + 400 * (i % classes)) * t) for i in range(n)]
    )
    noise = [torch.from_numpy(synth_noise("white_noise", 2.0))]
    return st.Clips(waves, torch.arange(n) % classes, [f"w{c}" for c in range(classes)], noise)


def test_noisy_features_are_fixed_by_the_seed_and_clean_without_snr():
    clips = _clips()
    a, b = st.noisy_features(clips, seed=0), st.noisy_features(clips, seed=0)
    assert a.shape == (8, 1, 40, 101) and torch.equal(a, b)
    assert not torch.equal(a, st.noisy_features(clips, seed=1))
    assert torch.allclose(st.noisy_features(clips, None), LogMel()(clips.waves))


def test_one_snr_mixes_every_clip_at_that_ratio():
    clips = _clips()
    quiet, loud = st.noisy_features(clips, 30.0), st.noisy_features(clips, -10.0)
    clean = st.noisy_features(clips, None)
    assert (quiet - clean).abs().mean() < (loud - clean).abs().mean()
    with pytest.raises(ValueError, match="snr_db=None"):
        st.noisy_features(st.Clips(clips.waves, clips.labels, clips.classes, []), 5.0)


def test_fine_tune_and_scratch_models_train_and_learn_two_tones():
    clips = _clips(16)
    x = st.noisy_features(clips, None)
    model = st.new_model(None, 2, seed=0)
    st.train_on_clips(model, clips, steps=12, lr=3e-3, batch_size=8, noise=False)
    assert st.accuracy(model, x, clips.labels) >= 0.9
    tuned = st.new_model(model.backbone, 3, seed=0)
    assert tuned.head.out_features == 3 and tuned.backbone is not model.backbone
    with pytest.raises(ValueError, match="steps"):
        st.train_on_clips(tuned, clips, steps=0)


def test_probe_snr_sweep_and_image_backbone_shapes():
    clips = _clips(12)
    x = st.noisy_features(clips, None)
    model = st.new_model(None, 2, seed=0)
    assert 0.0 <= st.probe_accuracy(model.backbone, (x, clips.labels), (x, clips.labels)) <= 1.0
    sweep = st.snr_sweep(model, clips, [20, 0])
    assert set(sweep) == {20, 0}
    image_net = st.as_image_backbone(
        torch.nn.Sequential(
            torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
        )
    )
    assert image_net(x).shape == (12, 4)


def test_hf_audio_backbone_pools_waveforms_offline():
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(8, 8),
        conv_stride=(5, 4),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    net = st.hf_audio_backbone(config=config)
    with torch.no_grad():
        assert net(_clips(3).waves).shape == (3, 16)


def test_load_clips_reads_a_speech_commands_folder(tmp_path):
    from tests.test_speech import _fake_speech_commands

    root = _fake_speech_commands(tmp_path / "sc", per_word=4)
    clips = st.load_clips(str(root), "train")
    assert clips.waves.shape == (4, 16000) and clips.classes == ["cat", "dog"] and clips.noise
    assert clips.subset([0, 2]).labels.tolist() == clips.labels[[0, 2]].tolist()
