"""Audio features: mel filterbank, log-mel, noise, SpecAugment, augmented batches."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from tlcourse import audio


def _librosa_htk_filterbank(sr, n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(htk=True, norm=None), transcribed with numpy (librosa is not needed)."""
    fftfreqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel = np.linspace(2595 * np.log10(1 + fmin / 700), 2595 * np.log10(1 + fmax / 700), n_mels + 2)
    mel_f = 700 * (10 ** (mel / 2595) - 1)
    fdiff, ramps = np.diff(mel_f), np.subtract.outer(mel_f, fftfreqs)
    weights = np.zeros((n_mels, len(fftfreqs)))
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    return weights


def test_mel_filterbank_matches_librosa_formula():
    fb = audio.mel_filterbank(257, 20.0, 8000.0, 40, 16000)
    assert fb.shape == (257, 40)
    ref = _librosa_htk_filterbank(16000, 512, 40, 20.0, 8000.0)
    assert np.allclose(fb.numpy().T, ref, atol=1e-6)


def test_mel_scale_properties():
    assert abs(float(audio.hz_to_mel(1000.0)) - 1000.0) < 0.1  # HTK: 1 kHz ~ 1000 mel
    hz = torch.tensor([0.0, 440.0, 7999.0])
    assert torch.allclose(audio.mel_to_hz(audio.hz_to_mel(hz)), hz.double(), atol=1e-6)


def test_logmel_shape_and_sine_peak():
    t = torch.arange(16000) / 16000
    sine = torch.sin(2 * torch.pi * 1000 * t)
    mel = audio.LogMel()(torch.stack([sine, 0.5 * sine]))
    assert mel.shape == (2, 1, 40, audio.num_frames()) == (2, 1, 40, 101)
    edges = audio.mel_to_hz(
        torch.linspace(float(audio.hz_to_mel(20.0)), float(audio.hz_to_mel(8000.0)), 42)
    )
    nearest = int(torch.argmin((edges[1:-1] - 1000).abs()))
    assert int(mel[0, 0, :, 50].argmax()) == nearest


def test_logmel_power_matches_numpy_fft():
    wave = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    m = audio.LogMel(normalize=False)
    frame = 50  # centre=True: frame f covers samples [f*hop - n_fft/2, f*hop + n_fft/2)
    seg = wave[frame * 160 - 256 : frame * 160 + 256].numpy()
    window = np.zeros(512)
    window[56:456] = torch.hann_window(400).numpy()  # torch.stft centres the window in n_fft
    power = np.abs(np.fft.rfft(seg * window)) ** 2
    expected = np.log(power @ m.fbank.numpy() + 1e-6)
    assert np.allclose(m(wave[None])[0, 0, :, frame].numpy(), expected, atol=1e-3)


def test_mix_noise_hits_the_snr():
    g = torch.Generator().manual_seed(1)
    wave, noise = torch.randn(2, 16000, generator=g), torch.randn(2, 16000, generator=g)
    mixed = audio.mix_noise(wave, noise, torch.tensor([10.0, 0.0]))
    added = mixed - wave
    snr = 10 * torch.log10(wave.pow(2).mean(-1) / added.pow(2).mean(-1))
    assert torch.allclose(snr, torch.tensor([10.0, 0.0]), atol=1e-3)


def test_fix_length_pads_and_cuts():
    assert audio.fix_length(torch.ones(1, 10), 16).shape == (1, 16)
    assert audio.fix_length(torch.ones(1, 20), 16).shape == (1, 16)


def test_specaugment_masks_bands_only_in_training():
    x = torch.randn(4, 1, 40, 101)
    aug = audio.SpecAugment(freq_masks=1, freq_width=8, time_masks=1, time_width=20, value=0.0)
    assert torch.equal(aug.eval()(x), x)
    out = aug.train()(x, generator=torch.Generator().manual_seed(0))
    again = aug(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    masked = out == 0
    assert masked.any()
    rows, cols = masked.all(dim=3), masked.all(dim=2)  # whole mel bins / whole frames
    assert torch.equal(masked, rows.unsqueeze(3) | cols.unsqueeze(2))


def test_load_waveform_reads_mono_16k(tmp_path):
    path = tmp_path / "ok.wav"
    sf.write(path, np.zeros(8000, dtype=np.float32), 16000)
    assert audio.load_waveform(path).shape == (1, 8000)


@pytest.mark.parametrize(
    "rate, channels, match",
    [(8000, 1, "sox in.wav -r 16000"), (16000, 2, "sox in.wav -c 1")],
)
def test_load_waveform_names_the_conversion(tmp_path, rate, channels, match):
    path = tmp_path / "bad.wav"
    sf.write(path, np.zeros((rate, channels), dtype=np.float32), rate)
    with pytest.raises(audio.AudioFormatError, match=match):
        audio.load_waveform(path)


def test_load_waveform_unreadable_file(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"not audio at all")
    with pytest.raises(audio.AudioFormatError, match="Cannot read"):
        audio.load_waveform(path)


def test_augmented_waves_is_repeatable():
    g = torch.Generator().manual_seed(0)
    waves, labels = torch.randn(10, 1, 16000, generator=g), torch.arange(10)
    noise = [torch.randn(40000, generator=g)]

    def make():
        return audio.AugmentedWaves(
            waves, labels, noise, batch_size=4, spec_augment=audio.SpecAugment(), seed=5
        )

    a, b = list(make()), list(make())
    assert len(a) == len(make()) == 3
    assert a[0][0].shape == (4, 1, 40, 101)
    assert all(
        torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b, strict=True)
    )
