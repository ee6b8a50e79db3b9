"""The claims of notebooks/07_text_finetuning.ipynb, checked outside the notebook, and the
notebook's shape (chapter standard: objectives, time, profile cell, no outputs, exercises).

The claims need the real MiniLM encoder on the tickets corpus (encoding ~1,100 messages, and one
fine-tuning run), so they are marked ``claims`` and ``slow``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from tlcourse import text_models

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "07_text_finetuning.ipynb"
COUNTS = (8, 32)
MAX_LENGTH = 64


# ----------------------------------------------------------------------- the notebook's shape


def test_notebook_follows_the_chapter_standard():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first, code = nb.cells[0].source, [c.source for c in nb.cells if c.cell_type == "code"]
    assert "Learning objectives" in first and "Estimated time" in first
    assert "PROFILE = get_profile()" in code[0]
    assert all(
        not c.get("outputs") and c.get("execution_count") is None
        for c in nb.cells
        if c.cell_type == "code"
    )
    text = "\n".join(c.source for c in nb.cells)
    for needed in ("hf_trainer.trainer_fit", "attention_mask", "exercises/07_text_finetuning.ipynb",
                   "notebook run time", "distilbert-base-uncased"):  # fmt: skip
        assert needed in text, needed
    assert not any(
        line.startswith("class ") for c in code for line in c.splitlines()
    )  # classes live in the package


# ------------------------------------------------------------------------------- the claims


@pytest.fixture(scope="module")
def task():
    from tlcourse import hf
    from tlcourse.tasks import TEXT_TASK

    data = TEXT_TASK.load("quick")
    train, test = data.train, data.test
    subsets = {k: text_models.few_shot(train, k, seed=0) for k in COUNTS}
    texts = sorted({t for s in subsets.values() for t in s.texts} | set(test.texts))
    embeddings = dict(zip(texts, hf.cached_encode(texts, max_length=MAX_LENGTH), strict=True))
    return train, test, subsets, embeddings


def _frozen(sub, test, embeddings, k):
    import torch

    feats = lambda texts: torch.stack([embeddings[t] for t in texts])  # noqa: E731
    return text_models.frozen_probe(
        feats(sub.texts), sub.labels, feats(test.texts), test.labels, labels_per_class=k
    )


@pytest.mark.claims
@pytest.mark.slow
def test_frozen_minilm_beats_both_baselines_by_25_points(task):
    from tlcourse import hf

    train, test, subsets, embeddings = task
    tokenizer, _ = hf.load_encoder()
    for k in COUNTS:
        sub = subsets[k]
        frozen = _frozen(sub, test, embeddings, k).accuracy
        tfidf = text_models.tfidf_logreg(sub, test).accuracy
        scratch = text_models.train_bag_of_tokens(
            sub, test, tokenizer, max_length=MAX_LENGTH
        ).accuracy
        print(
            f"\n{k} labels per class: frozen {frozen:.3f}, TF-IDF {tfidf:.3f}, scratch {scratch:.3f}"
        )
        assert frozen >= max(tfidf, scratch) + 0.25


@pytest.mark.claims
@pytest.mark.slow
def test_messages_with_a_turn_are_misclassified_more_often(task):
    train, test, subsets, embeddings = task
    result = _frozen(subsets[32], test, embeddings, 32)
    turn = np.array([" but " in t.lower() for t in test.texts])
    wrong = result.predictions != np.array(test.labels)
    print(f"\nerror rate with a turn {wrong[turn].mean():.3f}, without {wrong[~turn].mean():.3f}")
    assert wrong[turn].mean() > 1.5 * wrong[~turn].mean()


@pytest.mark.claims
@pytest.mark.slow
def test_fine_tuning_at_32_labels_is_at_least_as_good_as_the_frozen_probe(task):
    train, test, subsets, embeddings = task
    frozen = _frozen(subsets[32], test, embeddings, 32)
    tuned, model, _, _ = text_models.fine_tune_encoder(subsets[32], test, epochs=3, lr=1e-4, batch_size=16,
                                                       max_length=MAX_LENGTH, device="cpu", progress=False)  # fmt: skip
    print(f"\n32 labels per class: fine-tuned {tuned.accuracy:.3f}, frozen {frozen.accuracy:.3f}")
    assert tuned.accuracy >= frozen.accuracy - 0.02
    assert tuned.trainable > 1000 * frozen.trainable


# -------------------------------------------------------------------- the exercise set (07)

SOLUTION = ROOT / "solutions" / "07_text_finetuning.ipynb"


@pytest.fixture(scope="module")
def references():
    from tlcourse.grading.references import load_references

    return load_references(SOLUTION)


@pytest.mark.parametrize("qid", ["07.1", "07.2", "07.3", "07.4"])
def test_references_pass_their_recorded_checks(qid, references, monkeypatch):
    from tlcourse.grading.checks import evaluate
    from tlcourse.grading.questions import get_question

    monkeypatch.setenv("TLCOURSE_CHECKS", str(ROOT / "exercises" / "checks"))
    assert evaluate(qid, references[get_question(qid).function]).passed


def _pad_keeping_the_head(lists, pad_id, max_length):
    """Truncates by cutting the tail, [SEP] included."""
    width = min(max_length, max(map(len, lists)))
    rows = [ids[:width] + [pad_id] * (width - len(ids[:width])) for ids in lists]
    ids = torch.tensor(rows)
    return ids, (ids != pad_id).long()


def _max_with_padding_as_zero(hidden, mask):
    """Multiplies by the mask: a padded 0 beats negative features."""
    return (hidden * mask.unsqueeze(-1)).max(1).values


def _encoder_without_mask(encoder, head, input_ids, pad_id):
    from tlcourse.hf import mean_pool

    mask = (input_ids != pad_id).long()
    with torch.no_grad():
        return head(mean_pool(encoder(input_ids=input_ids).last_hidden_state, mask))


def _accuracy(predictions, labels, num_classes):
    return float((predictions == labels).float().mean())


@pytest.mark.parametrize(
    ("qid", "wrong"),
    [
        ("07.1", _pad_keeping_the_head),
        ("07.2", _max_with_padding_as_zero),
        ("07.3", _encoder_without_mask),
        ("07.4", _accuracy),
    ],
)
def test_typical_mistakes_fail_their_checks(qid, wrong, monkeypatch):
    from tlcourse.grading.checks import evaluate

    monkeypatch.setenv("TLCOURSE_CHECKS", str(ROOT / "exercises" / "checks"))
    result = evaluate(qid, wrong)
    assert not result.passed and "Hint:" in result.message
