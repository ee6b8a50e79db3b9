"""Audio for the speech chapter: clips in, log-mel spectrograms out, and a small audio backbone.

- :func:`load_waveform` reads one clip and checks its format (sample rate, channels).
- :class:`LogMel` turns waveforms ``(N, S)`` into normalised log-mel spectrograms
  ``(N, 1, n_mels, frames)`` with ``torch.stft`` and a mel filterbank (:func:`mel_filterbank`,
  the HTK mel scale, as ``torchaudio.functional.melscale_fbanks`` with ``norm=None``).
- :func:`mix_noise` adds background noise at a given SNR; :class:`SpecAugment` masks bands of
  frequencies and time steps (Park et al., 2019).
- :func:`kwsnet` is the course's audio backbone architecture; :mod:`tlcourse.audio_zoo` trains
  it and lists it in the zoo.

Introduced in notebooks/06_speech.ipynb.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from tlcourse.nets import Classifier, conv_block

SAMPLE_RATE = 16_000
N_MELS = 40
# Fixed standardisation of LogMel(normalize=False) outputs, applied by LogMel() by default; the
# shipped kwsnet was trained with them. (Measured on the "speech-words" training split with
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

    def __init__(self, sample_rate: int = SAMPLE_RATE, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = N_MELS, normalize: bool = True) -> None:  # fmt: skip
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
        spec = torch.stft(wave, self.n_fft, self.hop_length, self.win_length, self.window,
                          center=True, return_complex=True).abs().pow(2)  # fmt: skip
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

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2,
                 time_width: int = 20, value: float = 0.0) -> None:  # fmt: skip
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


def kwsnet(num_classes: int = 10, width: int = 32) -> Classifier:
    """The course's keyword-spotting CNN (~0.2 M parameters at width 32) on log-mel input.

    Input ``(N, 1, n_mels, frames)`` (e.g. ``(N, 1, 40, 101)`` for 1 s); backbone blocks
    ``stem, block1..block4, pool`` give features ``(N, 4 * width)``; head -> ``(N, num_classes)``.
    """
    w = width
    backbone = nn.Sequential(
        OrderedDict(
            stem=conv_block(1, w),
            block1=conv_block(w, w * 3 // 2, stride=2),
            block2=conv_block(w * 3 // 2, 2 * w, stride=2),
            block3=conv_block(2 * w, 3 * w, stride=2),
            block4=conv_block(3 * w, 4 * w),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        )
    )
    return Classifier(backbone, nn.Linear(4 * w, num_classes))


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

    def __init__(self, waves: torch.Tensor, labels: torch.Tensor, noise: list[torch.Tensor] | tuple = (), *,
                 batch_size: int = 64, noise_prob: float = 0.8, snr_db: tuple[float, float] = (5.0, 20.0),
                 shift: int = 1600, spec_augment: SpecAugment | None = None, seed: int = 0) -> None:  # fmt: skip
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


# --- the course's audio backbone in the zoo ---------------------------------------------------

KWSNET_FILE = "kwsnet.safetensors"
# Measured by `python -m tlcourse zoo build kwsnet` for the shipped weights (see the card).
KWSNET_BUILD = {"seed": 0, "epochs": 12, "validation_accuracy": 0.739, "test_accuracy": 0.748,
                "build_seconds": 1332, "params": 212_254}  # fmt: skip

KWSNET_CARD = """# kwsnet: the course's keyword-spotting backbone

- Architecture: `tlcourse.audio.kwsnet(width=32)`, a 5-block CNN (3x3 conv, BatchNorm, ReLU;
  strides 1-2-2-2-1, widths 32-48-64-96-128) + global average pooling -> 128 features;
  {params:,} parameters with its 30-way head.
- Input: `tlcourse.audio.LogMel()` of 1 s, 16 kHz mono clips -> (1, 40, 101), already
  standardised as (log-mel - ({mean})) / {std}.
- Data: the training split of `speech-words` (30 source words synthesised with espeak-ng,
  by speaker; none of the target keywords yes/no/up/down/left/right/on/off/stop/go).
- Recipe: AdamW (lr 3e-3, weight decay 1e-2), one-cycle schedule, batch 64, {epochs} epochs,
  seed {seed}; per batch: random time shift (+-0.1 s), synthesised background noise (80 %% of
  clips, 5-20 dB SNR), SpecAugment (2 frequency masks <= 8 bins, 2 time masks <= 20 frames).
- Source accuracy (30 words, unseen speakers, noise at load time): validation
  {validation_accuracy:.1%}, test {test_accuracy:.1%}.
- Build: `python -m tlcourse zoo build kwsnet` in {build_seconds:.0f} s on a 2-core CPU
  (shared with other jobs, load average about 13; not yet timed on an idle machine).
- Licence: CC0-1.0 (weights trained by the course on CC0 data).
"""


def kwsnet_card(**measured) -> str:
    """The model card of ``kwsnet`` filled with the measured numbers of a build."""
    values = {**KWSNET_BUILD, **measured, "mean": LOGMEL_MEAN, "std": LOGMEL_STD}
    return KWSNET_CARD.replace("%%", "%").format(**values)


def load_kwsnet_backbone(path: str | Path | None = None) -> nn.Sequential:
    """The pretrained ``kwsnet`` backbone: log-mels ``(N, 1, 40, frames)`` -> features ``(N, 128)``."""
    from safetensors.torch import load_file

    from tlcourse.checkpoint import check_compatible
    from tlcourse.paths import assets_dir

    path = Path(path or assets_dir() / "zoo" / KWSNET_FILE)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. Build it with `python -m tlcourse zoo build kwsnet`."
        )
    state = {
        k.removeprefix("backbone."): v
        for k, v in load_file(path).items()
        if k.startswith("backbone.")
    }
    backbone = kwsnet(num_classes=1).backbone
    check_compatible({k: list(v.shape) for k, v in state.items()}, backbone, str(path))
    backbone.load_state_dict(state)
    return backbone


def train_kwsnet(seed: int = 0, epochs: int = KWSNET_BUILD["epochs"], out_dir: str | Path | None = None,
                 max_train: int | None = None, progress: bool | None = None) -> dict:  # fmt: skip
    """Train ``kwsnet`` on ``speech-words`` and write ``kwsnet.safetensors`` + ``kwsnet.md``.

    Deterministic given ``seed`` (on one machine). Writes to ``out_dir`` (default: the
    package's ``assets/zoo``); returns the measured numbers. ``max_train`` caps the training
    clips (for tests).
    """
    import time

    from tlcourse.datasets.speech import speech_dataset, waveform_tensors
    from tlcourse.engine import evaluate, fit
    from tlcourse.repro import seed_everything

    start, generator = time.perf_counter(), seed_everything(seed)
    train_set = speech_dataset("speech-words", "train", noise_prob=0.0)
    waves, labels = waveform_tensors(train_set)
    if max_train is not None:
        keep = torch.randperm(len(waves), generator=generator)[:max_train]
        waves, labels = waves[keep], labels[keep]
    loader = AugmentedWaves(
        waves, labels, train_set.noise_bank(), spec_augment=SpecAugment(), seed=seed
    )
    model = kwsnet(num_classes=len(train_set.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    from tlcourse.callbacks import LRScheduler

    schedule = LRScheduler(lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=epochs * len(loader)))  # fmt: skip
    history = fit(
        model,
        loader,
        epochs=epochs,
        optimizer=optimizer,
        callbacks=[schedule],
        device="cpu",
        progress=progress,
    )
    measured = {"seed": seed, "epochs": epochs, "params": sum(p.numel() for p in model.parameters()),
                "train_accuracy": history.last("train_accuracy")}  # fmt: skip
    for split in ("validation", "testing"):
        test = _logmel_loader(speech_dataset("speech-words", split, seed=seed))
        measured[f"{split.replace('testing', 'test')}_accuracy"] = evaluate(
            model, test, device="cpu"
        )["accuracy"]
    measured["build_seconds"] = time.perf_counter() - start
    _write_kwsnet(model, Path(out_dir) if out_dir else None, measured)
    return measured


def _logmel_loader(dataset) -> torch.utils.data.DataLoader:
    from tlcourse.datasets.speech import logmel_tensors

    return torch.utils.data.DataLoader(logmel_tensors(dataset), batch_size=256)


def _write_kwsnet(model: Classifier, out_dir: Path | None, measured: dict) -> None:
    from safetensors.torch import save_file

    from tlcourse.checkpoint import atomic_write
    from tlcourse.paths import assets_dir

    out_dir = out_dir or assets_dir() / "zoo"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in measured.items()}
    atomic_write(out_dir / KWSNET_FILE, lambda p: save_file(state, str(p), metadata=meta))
    atomic_write(out_dir / "kwsnet.md", lambda p: p.write_text(kwsnet_card(**measured)))


def _zoo() -> dict:
    from tlcourse.zoo import ZooEntry

    return {
        "kwsnet": ZooEntry(
            name="kwsnet", modality="audio", profile="quick", build=lambda num_classes=10: kwsnet(num_classes),
            weights=f"tlcourse/assets/zoo/{KWSNET_FILE}", mean=(LOGMEL_MEAN,), std=(LOGMEL_STD,),
            input_size=(1, N_MELS, num_frames()), licence="CC0-1.0", card=kwsnet_card(),
            load_backbone=load_kwsnet_backbone, train=lambda seed=0: train_kwsnet(seed),
        )
    }  # fmt: skip


ZOO = _zoo()
