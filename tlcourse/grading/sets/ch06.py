"""Chapter 06 (speech fine-tuning): windowed frames (the first log-mel step), masking bands of a
spectrogram (SpecAugment's core), a nearest-centroid probe on features, reading a confusion matrix.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/06_speech_finetuning.ipynb.

Introduced in exercises/06_speech_finetuning.ipynb.
"""

from __future__ import annotations

import torch

from tlcourse.grading.questions import OpenQuestion, Question


def _int(gen: torch.Generator, low: int, high: int) -> int:
    return int(torch.randint(low, high, (1,), generator=gen))


def cases_frames(gen: torch.Generator) -> list[tuple]:
    """Random waveforms of a few thousand samples; frame lengths and hops that do and do not
    divide the length (the last partial frame must be dropped)."""
    cases = []
    for win, hop in ((64, 32), (100, 37), (400, 160)):
        wave = torch.randn(_int(gen, 900, 3000), generator=gen)
        cases.append((wave, win + _int(gen, 0, 8), hop + _int(gen, 0, 8)))
    return cases


def cases_masks(gen: torch.Generator) -> list[tuple]:
    """Random log-mels; bands along frequencies and along time, some of width 0, some running
    past the end, masked with 0 or another value."""
    cases = []
    for dim, value in ((2, 0.0), (3, -1.5), (3, 0.0)):
        n, c, f, t = _int(gen, 2, 6), _int(gen, 1, 3), _int(gen, 8, 20), _int(gen, 10, 40)
        x = torch.randn(n, c, f, t, generator=gen)
        size = x.shape[dim]
        starts = torch.randint(0, size, (n,), generator=gen)
        widths = torch.randint(0, size // 2 + 2, (n,), generator=gen)
        cases.append((x, dim, starts, widths, value))
    return cases


def cases_probe(gen: torch.Generator) -> list[tuple]:
    """Clustered features (class means apart, features on different scales) and test rows."""
    cases = []
    for k, per_class, d in ((2, 3, 4), (4, 5, 16), (6, 2, 8)):
        centres = torch.randn(k, d, generator=gen) * 2
        scale = torch.rand(d, generator=gen) * 5 + 0.1
        labels = torch.arange(k).repeat_interleave(per_class)
        train = (centres[labels] + torch.randn(len(labels), d, generator=gen)) * scale
        test_labels = torch.randint(0, k, (10,), generator=gen)
        test = (centres[test_labels] + 1.5 * torch.randn(10, d, generator=gen)) * scale
        cases.append((train, labels, test))
    return cases


QUESTIONS = [
    Question(
        id="06.1",
        function="windowed_frames",
        points=2,
        title="windowed frames, the first step of a log-mel",
        cases=cases_frames,
        hint="only whole frames: there are 1 + (S - win_length) // hop_length of them; the periodic "
        "Hann window divides by win_length (not win_length - 1); keep the wave's dtype.",
    ),
    Question(
        id="06.2",
        function="mask_bands",
        points=2,
        title="masking bands of a spectrogram",
        cases=cases_masks,
        hint="build a boolean (N, size) band from positions >= start and < start + width, reshape it "
        "so it broadcasts along the other axes (size at `dim`, 1 elsewhere), then torch.where; do not "
        "write into x.",
    ),
    Question(
        id="06.3",
        function="centroid_probe",
        points=2,
        title="a nearest-centroid probe on audio features",
        cases=cases_probe,
        hint="standardise test features with the *training* mean and std (unbiased=False, + 1e-6); one "
        "centroid per class from the standardised training rows; torch.cdist then argmin (int64).",
    ),
    OpenQuestion(id="06.4", points=2, title="reading a confusion matrix"),
]
