"""Chapter 06 experiments: keyword spotting by transfer, on clips held in memory.

- :class:`Clips` holds one split as clean waveforms ``(N, S)`` + labels, and
  :func:`load_clips` reads a speech set into it; :func:`noisy_features` turns clips into
  log-mels with background noise drawn once (a fixed evaluation set), at a chosen SNR.
- :func:`new_model` builds kwsnet from scratch or with the pretrained backbone (any zoo
  backbone for cross-modal runs); :func:`train_on_clips` trains it on augmented log-mels
  (shift, noise, optional SpecAugment) for a fixed number of optimizer steps, with
  discriminative learning rates (pretrained backbone slower than the new head).
- :func:`probe_accuracy` fits a logistic-regression probe on frozen features;
  :func:`snr_sweep` scores a model against the signal-to-noise ratio.

Introduced in notebooks/06_speech_finetuning.ipynb.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from tlcourse.audio import AugmentedWaves, LogMel, SpecAugment, mix_noise
from tlcourse.engine import fit
from tlcourse.nets import Classifier
from tlcourse.recipes import logistic_probe, one_cycle
from tlcourse.repro import seed_everything


@dataclass
class Clips:
    """One split in memory: clean ``waves (N, S)``, ``labels (N,)``, class names, noise clips."""

    waves: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    noise: list[torch.Tensor]

    def subset(self, index) -> Clips:
        """The clips at ``index`` (a list or tensor of positions)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return Clips(self.waves[index], self.labels[index], self.classes, self.noise)


def load_clips(name: str, split: str, **kwargs) -> Clips:
    """Split ``split`` of speech set ``name`` (catalogue name or folder) as clean :class:`Clips`."""
    from tlcourse.datasets import catalog
    from tlcourse.datasets.speech import waveform_tensors

    dataset = catalog.load(name, split, noise_prob=0.0, **kwargs)
    if len(dataset) == 0:
        raise ValueError(f"Split {split!r} of {name!r} has no clips; check the list files.")
    waves, labels = waveform_tensors(dataset)
    return Clips(waves.reshape(len(waves), -1), labels, list(dataset.classes), dataset.noise_bank())


@torch.no_grad()
def noisy_features(
    clips: Clips,
    snr_db: float | tuple[float, float] | None = (5.0, 20.0),
    noise_prob: float = 0.8,
    seed: int = 0,
    logmel: nn.Module | None = None,
) -> torch.Tensor:
    """Log-mels ``(N, 1, n_mels, frames)`` of ``clips`` with noise drawn once from ``seed``.

    ``snr_db``: a range (each noisy clip draws its SNR in it), one number (every clip at that
    SNR, ``noise_prob`` ignored), or ``None`` (clean).
    """
    logmel = logmel or LogMel()
    waves = clips.waves
    if snr_db is not None:
        if not clips.noise:
            raise ValueError("These clips have no background noise; pass snr_db=None.")
        g = torch.Generator().manual_seed(seed)
        n, s = waves.shape
        crops = torch.stack([_crop(clips.noise, s, g) for _ in range(n)])
        if isinstance(snr_db, (int, float)):
            waves = mix_noise(waves, crops, torch.full((n,), float(snr_db)))
        else:
            snr = snr_db[0] + torch.rand(n, generator=g) * (snr_db[1] - snr_db[0])
            use = (torch.rand(n, generator=g) < noise_prob).unsqueeze(-1)
            waves = torch.where(use, mix_noise(waves, crops, snr), waves)
    return torch.cat([logmel(w) for w in waves.split(256)])


def _crop(noise: list[torch.Tensor], num_samples: int, g: torch.Generator) -> torch.Tensor:
    clip = noise[int(torch.randint(len(noise), (1,), generator=g))]
    start = int(torch.randint(clip.shape[-1] - num_samples + 1, (1,), generator=g))
    return clip[start : start + num_samples]


def new_model(
    backbone: nn.Module | None, num_classes: int, seed: int = 0, feature_dim: int | None = None
) -> Classifier:
    """kwsnet from scratch (``backbone=None``) or a copy of ``backbone`` + a fresh linear head.

    ``feature_dim`` defaults to the backbone's output size on a 1 s log-mel.
    """
    from tlcourse.models.kwsnet import kwsnet

    seed_everything(seed)
    if backbone is None:
        return kwsnet(num_classes=num_classes)
    backbone = copy.deepcopy(backbone)
    if feature_dim is None:
        backbone.eval()
        with torch.no_grad():
            feature_dim = backbone(torch.zeros(2, 1, 40, 101)).shape[-1]
    return Classifier(backbone, nn.Linear(feature_dim, num_classes))


def train_on_clips(
    model: Classifier,
    clips: Clips,
    *,
    steps: int,
    lr: float = 3e-3,
    backbone_lr: float | None = None,
    batch_size: int = 32,
    noise: bool = True,
    spec_augment: SpecAugment | None = None,
    seed: int = 0,
    progress: bool | None = False,
) -> Classifier:
    """Train every parameter of ``model`` for ``steps`` optimizer steps on augmented ``clips``.

    Each batch: random time shift, background noise (if ``noise``; 80 % of clips, 5-20 dB),
    log-mel, ``spec_augment``. AdamW, one-cycle schedule; the head peaks at ``lr``, the backbone
    at ``backbone_lr`` (default ``lr``: one rate for all, as from scratch).
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    batch_size = min(batch_size, len(clips.labels))
    loader = AugmentedWaves(
        clips.waves,
        clips.labels,
        clips.noise if noise else (),
        batch_size=batch_size,
        spec_augment=spec_augment,
        seed=seed,
    )
    epochs = math.ceil(steps / len(loader))
    groups = [
        {"params": model.backbone.parameters(), "lr": backbone_lr or lr},
        {"params": model.head.parameters(), "lr": lr},
    ]
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-2)
    seed_everything(seed)
    fit(
        model,
        loader,
        epochs=epochs,
        optimizer=optimizer,
        device="cpu",
        callbacks=[one_cycle(epochs, len(loader))],
        progress=progress,
    )
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on features ``x (N, ...)``, labels ``y (N,)``."""
    model.eval()
    pred = torch.cat([model(b).argmax(1) for b in x.split(256)])
    return float((pred == y).float().mean())


@torch.no_grad()
def probe_accuracy(
    backbone: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
) -> float:
    """Logistic-regression probe on frozen ``backbone`` features of log-mels ``train``, scored on ``test``."""
    backbone.eval()
    feats = [torch.cat([backbone(b) for b in x.split(256)]) for x, _ in (train, test)]
    return logistic_probe((feats[0], train[1]), (feats[1], test[1]))


def snr_sweep(
    model: nn.Module, clips: Clips, snrs: list[float], seed: int = 0
) -> dict[float, float]:
    """Accuracy of ``model`` on ``clips`` with every clip mixed with noise at each SNR (dB)."""
    return {
        snr: accuracy(model, noisy_features(clips, snr, seed=seed), clips.labels) for snr in snrs
    }


class ThreeChannels(nn.Module):
    """Repeat a one-channel log-mel ``(N, 1, H, W)`` into the ``(N, 3, H, W)`` an image net takes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1)


def as_image_backbone(backbone: nn.Module) -> nn.Sequential:
    """An image backbone that takes log-mels: ``(N, 1, n_mels, frames) -> features``.

    The log-mels are already standardised (mean ~0, std ~1), the scale image nets are trained on.
    """
    return nn.Sequential(ThreeChannels(), backbone)


class HFAudioBackbone(nn.Module):
    """A ``transformers`` speech encoder as a backbone: waveforms ``(N, S)`` -> features ``(N, D)``.

    Normalises each clip (zero mean, unit variance, as wav2vec2's feature extractor does) and
    averages the encoder's last hidden states over time.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        waves = waves.reshape(len(waves), -1)
        waves = (waves - waves.mean(-1, keepdim=True)) / (waves.std(-1, keepdim=True) + 1e-7)
        return self.encoder(waves).last_hidden_state.mean(1)


def hf_audio_backbone(name: str = "facebook/wav2vec2-base", config=None) -> HFAudioBackbone:
    """A pretrained ``transformers`` speech encoder ``name`` (downloads it: full profile only).

    ``config``: build that configuration with random weights instead (for tests, offline).
    """
    from transformers import AutoModel

    encoder = (
        AutoModel.from_config(config) if config is not None else AutoModel.from_pretrained(name)
    )
    return HFAudioBackbone(encoder.eval())
