"""Audio features for the speech chapter: clips in, log-mel spectrograms out, noise, SpecAugment.

- :func:`load_waveform` reads one clip and checks its format (sample rate, channels).
- :class:`LogMel` turns waveforms ``(N, S)`` into normalised log-mel spectrograms
  ``(N, 1, n_mels, frames)`` with ``torch.stft`` and a mel filterbank (:func:`mel_filterbank`,
  the HTK mel scale, as ``torchaudio.functional.melscale_fbanks`` with ``norm=None``).
- :func:`mix_noise` adds background noise at a given SNR; :class:`SpecAugment` masks bands of
  frequencies and time steps (Park et al., 2019).
- :class:`AugmentedWaves` serves augmented log-mel batches from clips held in memory.

Features only: the course's audio backbone (``kwsnet``) lives in :mod:`tlcourse.models.kwsnet`.

Introduced in notebooks/06_speech_finetuning.ipynb (the speech chapter, 06, is not written yet).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

SAMPLE_RATE = 16_000
N_MELS = 40
# Fixed standardisation of LogMel(normalize=False) outputs, applied by LogMel() by default; the
# shipped kwsnet (tlcourse.models.kwsnet) was trained with them. (Measured on the "speech-words" training split with
# noise: mean -4.2, std 5.0 - close enough; keep these so the weights stay valid.)
LOGMEL_MEAN = -6.7
LOGMEL_STD = 4.2


class AudioFormatError(ValueError):
    """A clip cannot be used as it is; the message says how to convert it."""


def load_waveform(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Read a mono clip at ``sample_rate`` as float32 ``(1, S)`` in [-1, 1].

    Raises :class:`AudioFormatError` (naming the fix) for an unreadable file, another sample
    rate or more than one channel.
    """
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise AudioFormatError(
            f"Cannot read the audio file {path} ({err}). Delete or replace it; for the course's "
            "own data, re-create the folder with `python -m tlcourse data prepare NAME`."
        ) from err
    if rate != sample_rate:
        raise AudioFormatError(
            f"{path} has sample rate {rate} Hz, expected {sample_rate} Hz. Resample it, e.g. "
            f"`sox in.wav -r {sample_rate} out.wav`, or in Python "
            f"`scipy.signal.resample_poly(audio, {sample_rate}, {rate})`."
        )
    if audio.shape[1] != 1:
        raise AudioFormatError(
            f"{path} has {audio.shape[1]} channels, expected mono. Convert it, e.g. "
            "`sox in.wav -c 1 out.wav`, or average the channels: `audio.mean(axis=1)`."
        )
    return torch.from_numpy(np.ascontiguousarray(audio.T))


def fix_length(wave: torch.Tensor, num_samples: int = SAMPLE_RATE) -> torch.Tensor:
    """Zero-pad or cut the last dimension to ``num_samples``: ``(..., S) -> (..., num_samples)``."""
    if wave.shape[-1] >= num_samples:
        return wave[..., :num_samples]
    return nn.functional.pad(wave, (0, num_samples - wave.shape[-1]))


def mix_noise(
    wave: torch.Tensor, noise: torch.Tensor, snr_db: float | torch.Tensor
) -> torch.Tensor:
    """Add ``noise`` to ``wave`` (both ``(..., S)``) scaled to a signal-to-noise ratio in dB.

    ``snr_db`` is a number or a tensor of shape ``(...)`` (one SNR per clip).
    """
    snr = torch.as_tensor(snr_db, dtype=wave.dtype).unsqueeze(-1)
    signal_power = wave.pow(2).mean(-1, keepdim=True).clamp_min(1e-10)
    noise_power = noise.pow(2).mean(-1, keepdim=True).clamp_min(1e-10)
    return wave + noise * torch.sqrt(signal_power / (noise_power * 10 ** (snr / 10)))


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 log10(1 + hz / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int
) -> torch.Tensor:
    """Triangular filters ``(n_freqs, n_mels)`` equally spaced on the HTK mel scale (peak 1).

    Multiply a power spectrogram ``(..., frames, n_freqs)`` by it to get mel energies.
    """
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, dtype=torch.float64)
    edges = mel_to_hz(
        torch.linspace(
            hz_to_mel(f_min).item(), hz_to_mel(f_max).item(), n_mels + 2, dtype=torch.float64
        )
    )
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


class LogMel(nn.Module):
    """Waveforms ``(N, S)`` or ``(N, 1, S)`` -> log-mel spectrograms ``(N, 1, n_mels, frames)``.

    25 ms Hann windows every 10 ms (at 16 kHz), power spectrum, ``n_mels`` HTK mel filters
    from 20 Hz to 8 kHz, natural log of (energy + 1e-6); then, if ``normalize``, standardised
    with the course constants :data:`LOGMEL_MEAN`, :data:`LOGMEL_STD`. A 1 s clip gives 101 frames.
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        n_fft: int = 512,
        win_length: int = 400,
        hop_length: int = 160,
        n_mels: int = N_MELS,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length, self.normalize = (
            n_fft,
            win_length,
            hop_length,
            normalize,
        )
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        fbank = mel_filterbank(n_fft // 2 + 1, 20.0, sample_rate / 2, n_mels, sample_rate)
        self.register_buffer("fbank", fbank, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.reshape(-1, wave.shape[-1])
        spec = (
            torch.stft(
                wave,
                self.n_fft,
                self.hop_length,
                self.win_length,
                self.window,
                center=True,
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        mel = torch.log(torch.matmul(spec.transpose(1, 2), self.fbank).transpose(1, 2) + 1e-6)
        if self.normalize:
            mel = (mel - LOGMEL_MEAN) / LOGMEL_STD
        return mel.unsqueeze(1)


class SpecAugment(nn.Module):
    """Mask random frequency bands and time spans of ``(N, C, n_mels, frames)`` (training only).

    Each example gets ``freq_masks`` bands of up to ``freq_width`` mel bins and ``time_masks``
    spans of up to ``time_width`` frames set to ``value`` (0 = the mean after :class:`LogMel`).
    In ``eval()`` mode it returns its input unchanged.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 20,
        value: float = 0.0,
    ) -> None:
        super().__init__()
        self.freq_masks, self.freq_width = freq_masks, freq_width
        self.time_masks, self.time_width, self.value = time_masks, time_width, value

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.training:
            return x
        keep = torch.ones_like(x, dtype=torch.bool)
        for dim, count, width in (
            (2, self.freq_masks, self.freq_width),
            (3, self.time_masks, self.time_width),
        ):
            for _ in range(count):
                keep &= ~_band_mask(x.shape, dim, width, generator)
        return torch.where(keep, x, torch.full_like(x, self.value))


def _band_mask(
    shape: torch.Size, dim: int, width: int, generator: torch.Generator | None
) -> torch.Tensor:
    """Boolean ``shape`` mask, True on one random band of < ``width`` steps along ``dim`` per example."""
    n, size = shape[0], shape[dim]
    w = torch.randint(0, width + 1, (n,), generator=generator)
    start = (torch.rand(n, generator=generator) * (size - w).clamp_min(1)).long()
    pos = torch.arange(size)
    band = (pos >= start[:, None]) & (pos < (start + w)[:, None])  # (N, size)
    view = [n, 1, 1, 1]
    view[dim] = size
    return band.view(view).expand(shape)


def num_frames(num_samples: int = SAMPLE_RATE, hop_length: int = 160) -> int:
    """Frames :class:`LogMel` makes from ``num_samples`` samples (``1 + S // hop``)."""
    return 1 + math.floor(num_samples / hop_length)


class AugmentedWaves:
    """A loader of ``(log-mels (B, 1, n_mels, frames), labels (B,))`` from in-memory waveforms.

    Every epoch it reshuffles and, per clip, shifts it in time (up to ``shift`` samples), adds
    a random crop of a noise clip (with probability ``noise_prob``, SNR drawn from ``snr_db``),
    computes :class:`LogMel` and applies ``spec_augment`` if given. Repeatable from ``seed``.
    Pass it to :func:`tlcourse.engine.fit` as the training loader.

    Args:
        waves: ``(N, 1, S)`` or ``(N, S)`` clean clips; labels: ``(N,)``.
        noise: background-noise clips, each ``(S_k,)`` with ``S_k >= S``.
    """

    def __init__(
        self,
        waves: torch.Tensor,
        labels: torch.Tensor,
        noise: list[torch.Tensor] | tuple = (),
        *,
        batch_size: int = 64,
        noise_prob: float = 0.8,
        snr_db: tuple[float, float] = (5.0, 20.0),
        shift: int = 1600,
        spec_augment: SpecAugment | None = None,
        seed: int = 0,
    ) -> None:
        self.waves, self.labels, self.noise = waves.reshape(len(waves), -1), labels, list(noise)
        self.batch_size, self.noise_prob, self.snr_db, self.shift = (
            batch_size,
            noise_prob,
            snr_db,
            shift,
        )
        self.spec_augment, self.logmel = spec_augment, LogMel()
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.waves) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.waves), generator=self.generator)
        for idx in order.split(self.batch_size):
            yield self.features(self.waves[idx]), self.labels[idx]

    @torch.no_grad()
    def features(self, waves: torch.Tensor) -> torch.Tensor:
        """Augment a batch of clips ``(B, S)`` and return its log-mels ``(B, 1, n_mels, frames)``."""
        g, (n, s) = self.generator, waves.shape
        shifts = torch.randint(-self.shift, self.shift + 1, (n,), generator=g)
        waves = torch.stack([torch.roll(w, int(k)) for w, k in zip(waves, shifts, strict=True)])
        if self.noise:
            crops = torch.stack([self._noise_crop(s) for _ in range(n)])
            snr = self.snr_db[0] + torch.rand(n, generator=g) * (self.snr_db[1] - self.snr_db[0])
            use = (torch.rand(n, generator=g) < self.noise_prob).unsqueeze(-1)
            waves = torch.where(use, mix_noise(waves, crops, snr), waves)
        x = self.logmel(waves)
        if self.spec_augment is not None:
            x = self.spec_augment.train()(x, generator=g)
        return x

    def _noise_crop(self, num_samples: int) -> torch.Tensor:
        noise = self.noise[int(torch.randint(len(self.noise), (1,), generator=self.generator))]
        start = int(
            torch.randint(noise.shape[-1] - num_samples + 1, (1,), generator=self.generator)
        )
        return noise[start : start + num_samples]
