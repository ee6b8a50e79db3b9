"""Unit tests for tlcourse.augment: backbone-matched preprocessing and augmentation presets."""

from __future__ import annotations

import types

import pytest
import torch

from tlcourse import augment


def _images(n: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def test_eval_transform_matches_manual_normalisation():
    image = _images(1)[0]
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    out = augment.eval_transform(mean, std)(image)
    expected = (image.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(
        3, 1, 1
    )
    assert out.dtype == torch.float32 and out.shape == (3, 32, 32)
    assert torch.allclose(out, expected, atol=1e-5)


def test_eval_transform_resizes_pil_and_tensors():
    from PIL import Image

    pil = Image.new("RGB", (50, 40), (10, 200, 30))
    t = augment.eval_transform((0.5,) * 3, (0.5,) * 3, size=24)
    assert t(pil).shape == (3, 24, 24)
    assert t(_images(1, 48)[0]).shape == (3, 24, 24)


def test_bad_statistics_raise_with_fix():
    with pytest.raises(ValueError, match="std must be positive"):
        augment.eval_transform((0.5,) * 3, (0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="one value per channel"):
        augment.eval_transform((0.5,) * 3, (0.5,) * 2)


def _entry(size=16, resize=True):
    return types.SimpleNamespace(
        mean=(0.1, 0.2, 0.3),
        std=(0.3, 0.3, 0.3),
        input_size=(3, size, size),
        resize_size=size if resize else None,
        interpolation="bilinear",
    )


def test_for_backbone_uses_entry_statistics():
    entry = _entry()
    image = _images(1)[0]
    out = augment.for_backbone(entry)(image)
    assert out.shape == (3, 16, 16)
    same_size = augment.for_backbone(_entry(32, resize=False))(image)
    assert torch.allclose(same_size, augment.eval_transform(entry.mean, entry.std)(image))
    train = augment.for_backbone(entry, train=True)(image)
    assert train.shape == (3, 16, 16) and train.dtype == torch.float32


def test_normalization_variants_differ_as_named():
    image = _images(1)[0]
    variants = {
        k: t(image)
        for k, t in augment.normalization_variants(
            types.SimpleNamespace(mean=(0.5,) * 3, std=(0.25,) * 3, input_size=(3, 32, 32))
        ).items()
    }
    assert set(variants) == {
        "matched",
        "no normalisation",
        "ImageNet statistics",
        "0-255, no scaling",
    }
    assert (
        float(variants["no normalisation"].min()) >= 0
        and float(variants["no normalisation"].max()) <= 1
    )
    assert float(variants["0-255, no scaling"].max()) > 1.5
    assert torch.allclose(
        variants["matched"], (variants["no normalisation"] - 0.5) / 0.25, atol=1e-5
    )


@pytest.mark.parametrize("strength", augment.STRENGTHS)
def test_train_transform_keeps_shape_and_dtype(strength):
    out = augment.train_transform((0.5,) * 3, (0.25,) * 3, 32, strength=strength)(_images(1)[0])
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_unknown_strength_names_choices():
    with pytest.raises(ValueError, match="strength must be one of"):
        augment.augmentation("medium")


def test_augmented_views_repeatable_varied_and_leave_global_rng():
    image = _images(1)[0]
    t = augment.augmentation("light")
    state = torch.random.get_rng_state()
    a = augment.augmented_views(image, t, n=6, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = augment.augmented_views(image, t, n=6, seed=3)
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])


@pytest.mark.slow
@pytest.mark.claims
def test_claim_matched_normalisation_beats_mistakes():
    """Chapter 02: the backbone's own statistics beat no normalisation and raw 0-255 pixels."""
    from tests.claims_data import BACKBONE, features, subset
    from tlcourse import zoo
    from tlcourse.recipes import logistic_probe

    train, test = subset("glyphs-digits", "train", 20), subset("glyphs-digits", "test", 30)
    backbone = zoo.load_backbone(BACKBONE).eval()
    acc = {
        name: logistic_probe(features(backbone, t, *train), features(backbone, t, *test))
        for name, t in augment.normalization_variants(zoo.entry(BACKBONE)).items()
    }
    assert acc["matched"] >= max(acc.values()) - 0.02, acc
    assert acc["matched"] - acc["no normalisation"] >= 0.02, acc
    assert acc["matched"] - acc["0-255, no scaling"] >= 0.10, acc
