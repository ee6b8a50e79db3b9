"""kwsnet: the course's keyword-spotting backbone (architecture, training, model card, zoo entry).

A small CNN on log-mel spectrograms (:class:`tlcourse.audio.LogMel`), pretrained on the 30
source words of ``speech-words`` by ``python -m tlcourse zoo build kwsnet`` (:func:`train`),
shipped as ``tlcourse/assets/zoo/kwsnet.safetensors``.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tlcourse.atomic import atomic_write, write_text
from tlcourse.audio import LOGMEL_MEAN, LOGMEL_STD, N_MELS, AugmentedWaves, SpecAugment, num_frames
from tlcourse.checkpoint import check_compatible
from tlcourse.models.entry import ZooEntry
from tlcourse.nets import Classifier, conv_block
from tlcourse.paths import assets_dir
from tlcourse.surgery import count_parameters


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


KWSNET_FILE = "kwsnet.safetensors"
# Measured by `python -m tlcourse zoo build kwsnet` for the shipped weights (see the card).
KWSNET_BUILD = {
    "seed": 0,
    "epochs": 12,
    "val_accuracy": 0.739,
    "test_accuracy": 0.748,
    "build_seconds": 1332,
    "params": 212_254,
}

KWSNET_CARD = """# kwsnet: the course's keyword-spotting backbone

- Architecture: `tlcourse.models.kwsnet.kwsnet(width=32)`, a 5-block CNN (3x3 conv, BatchNorm, ReLU;
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
  {val_accuracy:.1%}, test {test_accuracy:.1%}.
- Build: `python -m tlcourse zoo build kwsnet` in {build_seconds:.0f} s on a 2-core CPU
  (shared with other jobs, load average about 13; not yet timed on an idle machine).
- Licence: CC0-1.0 (weights trained by the course on CC0 data).
"""


def card(**measured) -> str:
    """The model card of ``kwsnet`` filled with the measured numbers of a build."""
    values = {**KWSNET_BUILD, **measured, "mean": LOGMEL_MEAN, "std": LOGMEL_STD}
    return KWSNET_CARD.replace("%%", "%").format(**values)


def load_backbone(path: str | Path | None = None) -> nn.Sequential:
    """The pretrained ``kwsnet`` backbone: log-mels ``(N, 1, 40, frames)`` -> features ``(N, 128)``."""
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


def train(
    seed: int = 0,
    epochs: int = KWSNET_BUILD["epochs"],
    out_dir: str | Path | None = None,
    max_train: int | None = None,
    progress: bool | None = None,
) -> dict:
    """Train ``kwsnet`` on ``speech-words`` and write ``kwsnet.safetensors`` + ``kwsnet.md``.

    Deterministic given ``seed`` (on one machine). Writes to ``out_dir`` (default: the
    package's ``assets/zoo``); returns the measured numbers. ``max_train`` caps the training
    clips (for tests).
    """
    from tlcourse.datasets.speech import speech_dataset, waveform_tensors
    from tlcourse.engine import fit
    from tlcourse.recipes import one_cycle
    from tlcourse.repro import seed_everything

    start, generator = time.perf_counter(), seed_everything(seed)
    train_set = speech_dataset("speech-words", "train", noise_prob=0.0)
    waves, labels = waveform_tensors(train_set)
    if max_train is not None:
        keep = torch.randperm(len(waves), generator=generator)[:max_train]
        waves, labels = waves[keep], labels[keep]
    noise = train_set.noise_bank()
    loader = AugmentedWaves(waves, labels, noise, spec_augment=SpecAugment(), seed=seed)
    model = kwsnet(num_classes=len(train_set.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
    history = fit(
        model,
        loader,
        epochs=epochs,
        optimizer=optimizer,
        device="cpu",
        callbacks=[one_cycle(epochs, len(loader))],
        progress=progress,
    )
    measured = {"seed": seed, "epochs": epochs, "params": count_parameters(model)}
    measured["train_accuracy"] = history.last("train_accuracy")
    measured |= {f"{split}_accuracy": _accuracy(model, split, seed) for split in ("val", "test")}
    measured["build_seconds"] = time.perf_counter() - start
    _write(model, Path(out_dir) if out_dir else assets_dir() / "zoo", measured)
    return measured


def _accuracy(model: Classifier, split: str, seed: int) -> float:
    """Accuracy of ``model`` on a held-out split of ``speech-words`` (noise drawn from ``seed``)."""
    from tlcourse.datasets.speech import speech_dataset
    from tlcourse.engine import evaluate

    loader = _logmel_loader(speech_dataset("speech-words", split, seed=seed))
    return evaluate(model, loader, device="cpu")["accuracy"]


def _logmel_loader(dataset) -> torch.utils.data.DataLoader:
    from tlcourse.datasets.speech import logmel_tensors

    return torch.utils.data.DataLoader(logmel_tensors(dataset), batch_size=256)


def _write(model: Classifier, out_dir: Path, measured: dict) -> None:
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    meta = {k: str(v) for k, v in measured.items()}
    atomic_write(out_dir / KWSNET_FILE, lambda p: save_file(state, str(p), metadata=meta))
    write_text(out_dir / "kwsnet.md", card(**measured))


# The course audio backbone, listed in :data:`tlcourse.zoo.FAMILIES`.
ZOO: dict[str, ZooEntry] = {
    "kwsnet": ZooEntry(
        name="kwsnet",
        modality="audio",
        profile="quick",
        build=kwsnet,
        weights=f"tlcourse/assets/zoo/{KWSNET_FILE}",
        mean=(LOGMEL_MEAN,),
        std=(LOGMEL_STD,),
        input_size=(1, N_MELS, num_frames()),
        licence="CC0-1.0",
        card=card(),
        load_backbone=load_backbone,
        train=train,
    )
}
