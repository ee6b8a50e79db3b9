"""Chapter 07's package code: the four approaches, length-sorted encoding, the Trainer glue, and
the full profile's code path (a hub-style checkpoint loaded by name) on a tiny random BERT."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlcourse import text_models
from tlcourse.datasets.text import TextSplit

hf = pytest.importorskip("tlcourse.hf")

WORDS = ("parcel", "late", "lost", "box", "refund", "charged", "twice", "invoice", "broken", "screen", "dead",
         "password", "login", "account", "love", "great", "thanks", "but", "my", "the", "is", "was", "me")  # fmt: skip
NAMES = ("delivery", "billing", "defect", "account", "praise")
TEMPLATES = {
    0: ["my parcel is late", "the box was lost", "parcel lost", "the parcel is late but thanks"],
    1: ["charged me twice", "refund my invoice", "the invoice was charged twice", "refund me"],
    2: ["the screen is broken", "broken box", "the screen was dead", "my screen is dead"],
    3: ["my password", "login is broken", "my account login", "the account password"],
    4: ["love it thanks", "great thanks", "love the screen", "great box thanks"],
}


def toy_split(repeat: int = 1) -> TextSplit:
    texts, labels = [], []
    for label, phrases in TEMPLATES.items():
        for phrase in phrases * repeat:
            texts.append(phrase)
            labels.append(label)
    return TextSplit(texts, labels, NAMES)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny random-weight BERT + word-piece tokenizer saved like a hub checkpoint."""
    return str(hf.save_tiny_encoder(tmp_path_factory.mktemp("tiny-bert"), WORDS))


def test_few_shot_is_balanced_shuffled_and_repeatable():
    split = toy_split(repeat=2)
    sub = text_models.few_shot(split, 3, seed=1)
    assert np.bincount(sub.labels).tolist() == [3] * 5
    assert sub.texts == text_models.few_shot(split, 3, seed=1).texts
    assert sub.labels != sorted(sub.labels)  # shuffled, not grouped by class
    assert len(text_models.few_shot(split, None)) == len(split)


def test_tfidf_result_row():
    split = toy_split()
    result = text_models.tfidf_logreg(split, split, labels_per_class=4)
    assert result.accuracy > 0.9 and 0 <= result.macro_f1 <= 1
    assert set(result.row()) == {
        "approach",
        "labels_per_class",
        "accuracy",
        "macro_f1",
        "trainable",
        "seconds",
    }
    assert result.predictions.shape == (len(split),) and result.trainable > 5


def test_bag_of_tokens_ignores_padding_and_unknown_tokens():
    model = text_models.bag_of_tokens(torch.tensor([5, 7]), vocab_size=10, num_classes=3, dim=4)
    ids = torch.tensor([[5, 7, 0, 0], [5, 7, 9, 3]])  # row 2: 9 and 3 were never seen in training
    features = model.backbone(ids)
    assert torch.allclose(features[0], features[1])
    assert model(ids).shape == (2, 3)
    assert sum(p.numel() for p in model.parameters()) == 3 * 4 + 4 * 3 + 3


def test_small_model_from_scratch_learns_the_toy_task(tiny_dir):
    tokenizer, _ = hf.load_encoder(tiny_dir, profile="quick")
    split = toy_split(repeat=3)
    result = text_models.train_bag_of_tokens(split, split, tokenizer, steps=60, lr=5e-2, dim=8)
    assert result.accuracy >= 0.8
    assert result.trainable < len(tokenizer) * 8  # only the word pieces seen in training


def test_frozen_probe_on_separable_features():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(5).repeat(6)
    features = torch.nn.functional.one_hot(labels, 5).float() * 3 + 0.1 * torch.randn(
        30, 5, generator=gen
    )
    result = text_models.frozen_probe(features, labels.tolist(), features, labels.tolist())
    assert result.accuracy == 1.0 and result.trainable == 5 * 5 + 5


def test_encode_batches_by_length_and_keeps_the_order(tiny_dir):
    tokenizer, model = hf.load_encoder(tiny_dir, profile="quick")
    texts = ["my parcel is late but the box was lost", "me", "refund my invoice"]
    together = hf.encode(texts, tokenizer, model, batch_size=2)
    one_by_one = torch.cat([hf.encode([t], tokenizer, model) for t in texts])
    assert torch.allclose(together, one_by_one, atol=1e-5)
    assert hf.length_order(texts, tokenizer) == [1, 2, 0]


def test_predict_texts_matches_the_loader_path(tiny_dir):
    from tlcourse.engine import predict

    clf, tokenizer = hf.text_classifier(5, name=tiny_dir, profile="quick")
    split = toy_split()
    logits, _ = predict(
        clf, hf.text_loader(split.texts, split.labels, tokenizer, batch_size=7), device="cpu"
    )
    assert torch.allclose(
        hf.predict_texts(clf, split.texts, tokenizer, batch_size=3), logits, atol=1e-5
    )


def test_local_folders_load_offline_in_the_quick_profile(tiny_dir):
    assert hf.resolve(tiny_dir, profile="quick") == tiny_dir
    with pytest.raises(ValueError, match="TLCOURSE_PROFILE=full"):
        hf.resolve("distilbert-base-uncased", profile="quick")


def test_full_profile_code_path_fine_tunes_a_checkpoint_by_name(tiny_dir):
    """What the full profile does with DistilBERT, on a tiny random BERT loaded by name."""
    split = toy_split(repeat=2)
    result, model, tokenizer, history = text_models.fine_tune_encoder(
        split,
        split,
        name=tiny_dir,
        epochs=3,
        lr=3e-3,
        batch_size=8,
        max_length=16,
        device="cpu",
        progress=False,
    )
    assert len(history) == 3 and history.last("train_loss") < history.series("train_loss")[0]
    assert result.trainable == sum(p.numel() for p in model.parameters())
    assert result.accuracy > 0.4  # well above chance (0.2) after a few steps


def test_trainer_gives_the_same_model_as_fit(tiny_dir):
    """Same seed, data order and hyper-parameters: the Trainer reproduces fit, dropout included."""
    from tlcourse.hf_trainer import trainer_fit
    from tlcourse.repro import seed_everything

    split = text_models.few_shot(toy_split(repeat=2), 4, seed=0)
    loop_result, loop_model, tokenizer, loop_history = text_models.fine_tune_encoder(
        split,
        split,
        name=tiny_dir,
        epochs=2,
        lr=1e-3,
        batch_size=4,
        max_length=16,
        device="cpu",
        progress=False,
    )
    seed_everything(0)
    trainer_model, _ = hf.text_classifier(5, name=tiny_dir, profile="quick")
    history = trainer_fit(trainer_model, split.texts, split.labels, tokenizer, epochs=2, lr=1e-3, batch_size=4,
                          max_length=16, seed=0, device="cpu", progress=False)  # fmt: skip
    assert np.allclose(history.series("train_loss"), loop_history.series("train_loss"), rtol=1e-5)
    for a, b in zip(loop_model.parameters(), trainer_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_trainer_arguments_switch_off_the_defaults_that_differ(tmp_path):
    from tlcourse.hf_trainer import trainer_arguments

    args = trainer_arguments(str(tmp_path), epochs=2, lr=1e-4, batch_size=8)
    assert (
        args.lr_scheduler_type == "constant" and args.max_grad_norm == 0 and args.weight_decay == 0
    )
    assert args.report_to in ([], "none", ["none"]) and args.save_strategy == "no"
    assert args.train_sampling_strategy == "sequential" and args.use_cpu
