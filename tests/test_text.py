"""The text corpus: size, labels, no duplicates or overlap between splits, not trivial."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tlcourse.datasets import catalog
from tlcourse.datasets.text import (
    LABELS,
    TextDataError,
    load_corpus,
    load_split,
    prepare,
)


def _normalise(text: str) -> str:
    import re

    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _bigrams(text: str) -> set:
    words = _normalise(text).split()
    return set(zip(words, words[1:], strict=False))


def test_corpus_is_large_enough_and_labelled():
    rows = load_corpus()
    assert len(rows) >= 1000
    assert {r["label"] for r in rows} == set(LABELS)
    for split in ("train", "val", "test"):
        part = load_split(split)
        assert set(part.labels) == set(range(len(LABELS))), split


def test_no_exact_duplicates_anywhere():
    texts = [_normalise(r["text"]) for r in load_corpus()]
    assert len(texts) == len(set(texts))


def test_no_near_duplicates_between_train_and_test():
    train = [_bigrams(t) for t in load_split("train").texts]
    for text in load_split("test").texts:
        g = _bigrams(text)
        worst = max(len(g & h) / len(g | h) for h in train)
        assert worst < 0.5, text


def test_tfidf_on_all_of_train_is_not_trivial():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train, test = load_split("train"), load_split("test")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(max_iter=2000, C=10).fit(
        vectorizer.fit_transform(train.texts), train.labels
    )
    accuracy = float(
        np.mean(clf.predict(vectorizer.transform(test.texts)) == np.array(test.labels))
    )
    assert 0.3 < accuracy <= 0.95


def test_subset_keeps_pairs():
    part = load_split("val")
    sub = part.subset([2, 0])
    assert sub.texts == [part.texts[2], part.texts[0]] and sub.labels == [
        part.labels[2],
        part.labels[0],
    ]


def test_bad_inputs_name_the_fix(tmp_path):
    with pytest.raises(TextDataError, match="use one of"):
        load_split("dev")
    with pytest.raises(TextDataError, match="make_text.py"):
        load_corpus(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hi"}) + "\n")
    with pytest.raises(TextDataError, match="line 1"):
        load_corpus(bad)
    with pytest.raises(TextDataError, match="labels="):
        load_split("train", labels=("delivery", "billing"))


def test_prepare_writes_split_files_and_datasheet():
    root = prepare()
    counts = {
        s: len((root / f"{s}.jsonl").read_text().splitlines()) for s in ("train", "val", "test")
    }
    assert sum(counts.values()) == len(load_corpus())
    assert "CC0" in (root / "README.md").read_text()
    assert not list(root.parent.glob(".tickets-*"))


def test_catalogue_entry():
    entry = catalog.info("tickets")
    assert entry.modality == "text" and entry.classes == len(LABELS) and "CC0" in entry.licence
    for word in ("Origin", "Licence", "Size", "Classes", "Splits", "Regenerate"):
        assert word in entry.datasheet
