"""Claim (chapter 07): with 8 labels per class, frozen MiniLM embeddings + logistic regression
beat TF-IDF + logistic regression by >= 10 accuracy points on the course corpus."""

from __future__ import annotations

import numpy as np
import pytest

from tlcourse.datasets.splits import labels_per_class_subset
from tlcourse.datasets.text import load_split

SEEDS = (0, 1, 2, 3, 4)


def tfidf_accuracy(train_texts, train_labels, test_texts, test_labels) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(max_iter=2000, C=10).fit(
        vectorizer.fit_transform(train_texts), train_labels
    )
    return float(np.mean(clf.predict(vectorizer.transform(test_texts)) == np.asarray(test_labels)))


def embedding_accuracy(train_emb, train_labels, test_emb, test_labels) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=10).fit(train_emb, train_labels)
    return float(np.mean(clf.predict(test_emb) == np.asarray(test_labels)))


def compare(labels_per_class: int, seeds=SEEDS) -> dict[str, float]:
    """Mean test accuracy of TF-IDF + LR and MiniLM + LR on ``labels_per_class`` examples per class."""
    from tlcourse.hf import cached_encode

    train, test = load_split("train"), load_split("test")
    subsets = {
        seed: train.subset(labels_per_class_subset(train.labels, labels_per_class, seed).tolist())
        for seed in seeds
    }
    pool = sorted({t for s in subsets.values() for t in s.texts})
    emb = dict(zip(pool, cached_encode(pool).numpy(), strict=True))
    test_emb = cached_encode(test.texts).numpy()
    scores = {"tfidf": [], "minilm": []}
    for sub in subsets.values():
        scores["tfidf"].append(tfidf_accuracy(sub.texts, sub.labels, test.texts, test.labels))
        x = np.stack([emb[t] for t in sub.texts])
        scores["minilm"].append(embedding_accuracy(x, sub.labels, test_emb, test.labels))
    return {k: float(np.mean(v)) for k, v in scores.items()}


@pytest.mark.claims
def test_minilm_beats_tfidf_with_8_labels_per_class():
    result = compare(8)
    print(f"\ntext, 8 labels per class: {result}")
    assert result["minilm"] >= result["tfidf"] + 0.10, result
