"""Input pipelines with ``torchvision.transforms.v2``: preprocessing that matches a backbone,
deliberately wrong variants (to measure what they cost), and augmentation presets.

A pretrained backbone saw its inputs scaled to ``[0, 1]`` and normalised with its own per-channel
``mean`` and ``std`` (recorded in its zoo entry). :func:`eval_transform` rebuilds exactly that;
:func:`train_transform` adds label-preserving augmentation in front of it. Every transform takes
a uint8 image tensor ``(3, H, W)`` (what :class:`~tlcourse.datasets.images.TensorImageDataset`
yields) or a PIL image, and returns a float tensor ``(3, size, size)``.

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
STRENGTHS = ("none", "light", "strong")


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> None:
    if len(mean) != len(std) or not mean:
        raise ValueError(
            f"mean and std need one value per channel; got {len(mean)} and {len(std)}."
        )
    if min(std) <= 0:
        raise ValueError(
            f"std must be positive per channel, got {tuple(std)}; use the backbone's own "
            "statistics, e.g. zoo.entry(name).std."
        )


def _resize(size: int | None) -> list:
    return [v2.Resize(size, antialias=True), v2.CenterCrop(size)] if size else []


def eval_transform(
    mean: Sequence[float], std: Sequence[float], size: int | None = None
) -> v2.Compose:
    """The preprocessing a backbone expects: (resize,) scale to ``[0, 1]``, normalise per channel.

    ``uint8 (3, H, W)`` or PIL -> ``float32 (3, size, size)``; ``size=None`` keeps the input size.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    _check_stats(mean, std)
    return v2.Compose(
        [
            v2.ToImage(),
            *_resize(size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(mean), list(std)),
        ]
    )


def _resize_steps(entry) -> list:
    """Resize the shorter side to ``entry.resize_size``, centre-crop to ``entry.input_size``; or none."""
    if not getattr(entry, "resize_size", None):
        return []
    mode = v2.InterpolationMode(getattr(entry, "interpolation", "bilinear"))
    return [
        v2.Resize(entry.resize_size, interpolation=mode, antialias=True),
        v2.CenterCrop(list(entry.input_size[1:])),
    ]


def for_backbone(entry, *, train: bool = False, strength: str = "light") -> v2.Compose:
    """The eval (or, with ``train=True``, augmenting) transform for a zoo entry's backbone.

    ``entry`` is a :class:`~tlcourse.models.entry.ZooEntry` (anything with ``mean``, ``std``,
    ``input_size = (C, H, W)`` and optionally ``resize_size``, ``interpolation``): the statistics and sizes come
    from the backbone, never from guesses. The eval transform equals ``zoo.preprocessing(name)``.

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    if train:
        return train_transform(entry.mean, entry.std, int(entry.input_size[-1]), strength=strength)
    _check_stats(entry.mean, entry.std)
    return v2.Compose(
        [
            v2.ToImage(),
            *_resize_steps(entry),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(list(entry.mean), list(entry.std)),
        ]
    )


def normalization_variants(entry) -> dict[str, v2.Compose]:
    """The right preprocessing for a zoo entry and three common mistakes, by name, to measure
    what each costs (all resize like the right one):

    * ``"matched"``: the backbone's own statistics (:func:`for_backbone`);
    * ``"no normalisation"``: scaled to ``[0, 1]`` only;
    * ``"ImageNet statistics"``: someone else's statistics (the usual copy-paste);
    * ``"0-255, no scaling"``: raw pixel values as floats.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    to_float = [v2.ToImage(), *_resize_steps(entry)]
    return {
        "matched": for_backbone(entry),
        "no normalisation": v2.Compose([*to_float, v2.ToDtype(torch.float32, scale=True)]),
        "ImageNet statistics": v2.Compose(
            [
                *to_float,
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
            ]
        ),
        "0-255, no scaling": v2.Compose([*to_float, v2.ToDtype(torch.float32, scale=False)]),
    }


def augmentation(strength: str = "light", size: int = 32) -> v2.Compose:
    """Label-preserving augmentation on uint8 images (no flips: a mirrored 'b' is a 'd').

    ``"light"``: small shifts, rotations and zooms plus colour jitter; ``"strong"`` adds
    perspective, blur and random erasing; ``"none"`` is the identity.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    if strength not in STRENGTHS:
        raise ValueError(f"strength must be one of {STRENGTHS}, got {strength!r}.")
    if strength == "none":
        return v2.Compose([v2.ToImage()])
    light = [
        v2.ToImage(),
        v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.85, 1.15), antialias=True),
        v2.RandomAffine(degrees=12, translate=(0.08, 0.08)),
        v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
    ]
    strong = [
        v2.RandomPerspective(0.25, p=0.5),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 1.0))], p=0.3),
    ]
    return v2.Compose(light + (strong if strength == "strong" else []))


def train_transform(
    mean: Sequence[float], std: Sequence[float], size: int = 32, strength: str = "light"
) -> v2.Compose:
    """Augmentation followed by the backbone's preprocessing: uint8 ``(3, H, W)`` -> float
    ``(3, size, size)``. With ``strength="strong"`` a random patch is also erased (after
    normalisation, so the patch is filled with the mean colour).

    Introduced in notebooks/04_image_finetuning.ipynb.
    """
    steps = [augmentation(strength, size), eval_transform(mean, std, size)]
    if strength == "strong":
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.12)))
    return v2.Compose(steps)


def augmented_views(
    image: torch.Tensor, transform: Callable, n: int = 8, seed: int = 0
) -> torch.Tensor:
    """``n`` random views of one image ``(3, H, W)`` through ``transform``: ``(n, 3, h, w)``.

    Seeded locally (the global random state is left as it was), so grids are repeatable.

    Introduced in notebooks/02_preparing_data.ipynb.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        views = [torch.as_tensor(transform(image)) for _ in range(n)]
    return torch.stack([v.as_subclass(torch.Tensor) for v in views])
