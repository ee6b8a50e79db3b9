"""Claim of chapter 01 (sections 1-2): with few labels, transfer beats training from scratch by far.

The statement of ``notebooks/01_what_is_transfer.ipynb``, with its recipe: ``transfer.labels_curve``
at the chapter's quick-profile ``Budget`` (the same optimisation steps for scratch and fine-tuning;
the probe a logistic regression on cached features). With 5 labels per class on ``glyphs-digits``,
the linear probe and fine-tuning of ``glyphnet-s`` (pretrained on Latin letters) each beat the same
architecture trained from scratch by >= 15 accuracy points, and fine-tuning stays >= 15 points ahead
at 50 labels per class too. (The chapter does not claim that the gap shrinks within its budget, so
neither does this test.)
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from tlcourse import transfer, zoo
from tlcourse.datasets import catalog, images, splits

BACKBONE, TARGET = "glyphnet-s", "glyphs-digits"
# the quick-profile budget of notebooks/01_what_is_transfer.ipynb (cell 1)
BUDGET = transfer.Budget(epochs=4, steps_per_epoch=15, batch_size=32, lr=1e-2, scratch_lr=3e-3)


@pytest.mark.claims
@pytest.mark.timeout(300)
def test_transfer_beats_scratch_by_15_points_with_chapter01_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    spec = images.GLYPH_SETS[TARGET]  # 50 train / 50 test images per class are enough here
    monkeypatch.setitem(
        images.GLYPH_SETS, TARGET, images.GlyphSet(spec.chars, (50, 1, 50), spec.role)
    )
    preprocess = zoo.preprocessing(BACKBONE)
    train = catalog.load(TARGET, "train", preprocess)
    test = splits.few_labels(catalog.load(TARGET, "test", preprocess), 50)
    curve = transfer.labels_curve(
        functools.partial(zoo.load, BACKBONE),
        functools.partial(zoo.load, BACKBONE, pretrained=False),
        train,
        test,
        labels_per_class=(5, 50),
        budget=BUDGET,
    )
    table = transfer.curve_table(curve)
    print(table)
    assert np.isfinite(table.to_numpy()).all()
    assert table["linear probe"][5] - table["scratch"][5] >= 0.15, table
    assert table["fine-tune"][5] - table["scratch"][5] >= 0.15, table
    assert (table["fine-tune"] - table["scratch"] >= 0.15).all(), table
