"""Four ways to classify text, each returning one comparable :class:`Result`.

- :func:`tfidf_logreg`: TF-IDF word and word-pair weights + logistic regression (no network);
- :func:`train_bag_of_tokens`: a small network trained from scratch: the mean of learned
  token embeddings + a linear head (fastText-style), on the encoder's own word pieces;
- :func:`frozen_probe`: a frozen pretrained encoder's cached sentence embeddings + a linear
  head (logistic regression);
- :func:`fine_tune_encoder`: the pretrained encoder and a new head, all weights trained with
  :func:`tlcourse.engine.fit`.

The chapter's data comes from :data:`tlcourse.tasks.TEXT_TASK` (the course's ``tickets`` corpus
in ``quick``, SST-2 in ``full``); :func:`few_shot` draws a shuffled subset with
``labels_per_class`` examples of each class. Uses ``transformers`` through :mod:`tlcourse.hf` only when asked.

Introduced in notebooks/07_text_finetuning.ipynb.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from torch import nn

from tlcourse.datasets.splits import labels_per_class_subset
from tlcourse.datasets.text import TextSplit
from tlcourse.metrics import accuracy, macro_f1
from tlcourse.nets import Classifier
from tlcourse.repro import seed_everything
from tlcourse.surgery import count_parameters


@dataclass
class Result:
    """One approach on one training set: test scores, trainable parameters, training time."""

    approach: str
    labels_per_class: int | None
    accuracy: float
    macro_f1: float
    trainable: int
    seconds: float
    predictions: np.ndarray = field(repr=False)

    def row(self) -> dict:
        """The result as a table row (without the predictions)."""
        return {k: v for k, v in asdict(self).items() if k != "predictions"}


def score(
    approach: str,
    labels_per_class: int | None,
    predictions,
    targets: Sequence[int],
    trainable: int,
    seconds: float,
) -> Result:
    """A :class:`Result` from predicted labels ``(N,)`` or logits ``(N, C)`` and the true ``targets``."""
    predictions = np.asarray(predictions.argmax(-1) if np.ndim(predictions) == 2 else predictions)
    return Result(
        approach,
        labels_per_class,
        accuracy(predictions, targets),
        macro_f1(predictions, targets),
        int(trainable),
        float(seconds),
        predictions,
    )


# ----------------------------------------------------------------------------------- data


def few_shot(split: TextSplit, labels_per_class: int | None, seed: int = 0) -> TextSplit:
    """``labels_per_class`` random examples of each class (``None``: all), in a random order from ``seed``."""
    chosen = (
        range(len(split))
        if labels_per_class is None
        else labels_per_class_subset(split.labels, labels_per_class, seed).tolist()
    )
    order = np.random.default_rng(seed).permutation(list(chosen))
    return split.subset(order.tolist())


# ----------------------------------------------------------------------------- TF-IDF


def tfidf_logreg(
    train: TextSplit, test: TextSplit, *, C: float = 10.0, labels_per_class: int | None = None
) -> Result:
    """TF-IDF of words and word pairs + logistic regression, fitted on ``train``, scored on ``test``.

    Trainable parameters: one weight per (n-gram in the training vocabulary, class) + biases.
    """
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    model = LogisticRegression(C=C, max_iter=2000).fit(
        vectorizer.fit_transform(train.texts), train.labels
    )
    predictions = model.predict(vectorizer.transform(test.texts))
    trainable = model.coef_.size + model.intercept_.size
    return score(
        "TF-IDF + logistic regression",
        labels_per_class,
        predictions,
        test.labels,
        trainable,
        time.perf_counter() - start,
    )


# ------------------------------------------------------------------ small model from scratch


class TokenLookup(nn.Module):
    """Maps tokenizer ids ``(N, T)`` to rows of a small table: known tokens -> 1..K, others -> 0."""

    def __init__(self, known_ids: torch.Tensor, vocab_size: int) -> None:
        super().__init__()
        table = torch.zeros(vocab_size, dtype=torch.long)
        table[known_ids] = torch.arange(1, len(known_ids) + 1)
        self.register_buffer("table", table)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.table[input_ids]


def bag_of_tokens(
    known_ids: torch.Tensor, vocab_size: int, num_classes: int, dim: int = 64
) -> Classifier:
    """``head(mean of token embeddings)``: token ids ``(N, T)`` -> logits ``(N, num_classes)``, all weights random.

    Only the ``known_ids`` (the word pieces seen in training, padding excluded) get an embedding;
    padding and unseen tokens map to row 0, which ``nn.EmbeddingBag(padding_idx=0)`` leaves out
    of the mean. ``backbone`` = lookup + embedding table, ``head`` = ``nn.Linear(dim, num_classes)``.
    """
    embed = nn.EmbeddingBag(len(known_ids) + 1, dim, mode="mean", padding_idx=0)
    backbone = nn.Sequential(OrderedDict(lookup=TokenLookup(known_ids, vocab_size), embed=embed))
    return Classifier(backbone, nn.Linear(dim, num_classes))


def train_bag_of_tokens(
    train: TextSplit,
    test: TextSplit,
    tokenizer,
    *,
    steps: int = 300,
    lr: float = 1e-2,
    batch_size: int = 16,
    dim: int = 64,
    seed: int = 0,
    max_length: int = 128,
    labels_per_class: int | None = None,
) -> Result:
    """Train :func:`bag_of_tokens` from scratch with ``engine.fit`` on ``tokenizer``'s word pieces.

    About ``steps`` optimisation steps whatever the training set's size (whole epochs).
    """
    from tlcourse.engine import fit, predict
    from tlcourse.hf import text_loader

    seed_everything(seed)
    start = time.perf_counter()
    batches = functools.partial(text_loader, tokenizer=tokenizer, max_length=max_length)
    loader = batches(train.texts, train.labels, batch_size=batch_size, shuffle=True, seed=seed)
    ids = torch.unique(loader.dataset.tensors[0])
    known = ids[ids != tokenizer.pad_token_id]
    model = bag_of_tokens(known, len(tokenizer), len(train.classes), dim)
    epochs = max(1, round(steps / len(loader)))
    fit(model, loader, epochs=epochs, lr=lr, device="cpu", progress=False)
    logits, _ = predict(model, batches(test.texts, test.labels, batch_size=256), device="cpu")
    seconds = time.perf_counter() - start
    trainable = count_parameters(model)
    return score(
        "small model from scratch", labels_per_class, logits, test.labels, trainable, seconds
    )


# --------------------------------------------------------------------- frozen encoder


def frozen_probe(
    train_features: torch.Tensor,
    train_labels: Sequence[int],
    test_features: torch.Tensor,
    test_labels: Sequence[int],
    *,
    C: float = 10.0,
    labels_per_class: int | None = None,
) -> Result:
    """A linear head (logistic regression) on cached, frozen sentence embeddings ``(N, D)``."""
    start = time.perf_counter()
    head = LogisticRegression(C=C, max_iter=2000).fit(train_features.numpy(), list(train_labels))
    predictions = head.predict(test_features.numpy())
    return score(
        "frozen encoder + linear head",
        labels_per_class,
        predictions,
        test_labels,
        head.coef_.size + head.intercept_.size,
        time.perf_counter() - start,
    )


# ----------------------------------------------------------------------- fine-tuning


def fine_tune_encoder(
    train: TextSplit,
    test: TextSplit,
    *,
    name: str | None = None,
    epochs: int = 4,
    lr: float = 1e-4,
    batch_size: int = 8,
    max_length: int = 64,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    labels_per_class: int | None = None,
    profile: str | None = None,
):
    """Fine-tune all weights of a pretrained encoder (MiniLM by default) + a new linear head.

    ``AdamW(lr, weight_decay=0)`` at a constant rate, examples in ``train``'s order (shuffle it
    once with :func:`few_shot`), seeded with ``seed`` before the model is built and again before
    training. ``name`` and ``profile`` are passed to :func:`tlcourse.hf.load_encoder`.
    Returns ``(Result, model, tokenizer, history)``.
    """
    from tlcourse.engine import fit
    from tlcourse.hf import predict_texts, text_classifier, text_loader

    seed_everything(seed)
    model, tokenizer = text_classifier(len(train.classes), name=name, profile=profile)
    start = time.perf_counter()
    loader = text_loader(
        train.texts, train.labels, tokenizer, batch_size=batch_size, max_length=max_length
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    seed_everything(seed)
    history = fit(
        model, loader, epochs=epochs, optimizer=optimizer, device=device, progress=progress
    )
    logits = predict_texts(model, test.texts, tokenizer, max_length=max_length)
    result = score(
        "fine-tuned encoder",
        labels_per_class,
        logits,
        test.labels,
        count_parameters(model, trainable=True),
        time.perf_counter() - start,
    )
    return result, model, tokenizer, history
