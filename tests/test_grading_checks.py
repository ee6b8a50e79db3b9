"""Inline checks and the strict comparison: right answers pass, wrong ones fail with a useful
message that never shows the reference code, and look-alike objects never pass. The checks
compare with the results recorded in exercises/checks/ (data), never with code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tlcourse.grading import check
from tlcourse.grading.checks import evaluate
from tlcourse.grading.questions import Question, QuestionError, get_question, question_set, same
from tlcourse.grading.references import load_references
from tlcourse.grading.wire import Unsupported, decode, dump, encode, load

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [q for q in question_set("00") if isinstance(q, Question)]
REFERENCES = load_references(ROOT / "solutions" / "00_warmup.ipynb")


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: q.id)
def test_reference_passes_its_own_check(question):
    assert evaluate(question.id, REFERENCES[question.function]).passed


def test_questions_hold_no_reference():
    assert not hasattr(QUESTIONS[0], "reference")
    with pytest.raises(TypeError):
        Question("00.1", "f", 1, "t", cases=lambda g: [], reference=lambda: 0)  # type: ignore[call-arg]


def test_wrong_answer_fails_with_expected_value_and_hint(capsys):
    def count_trainable(model):
        return sum(p.numel() for p in model.parameters())  # ignores requires_grad

    check("00.1", count_trainable)
    out = capsys.readouterr().out
    assert out.startswith("FAILED 00.1") and "expected" in out and "Hint:" in out
    assert "requires_grad]" not in out and "def " not in out  # no reference code


def test_head_left_frozen_is_caught():
    def freeze_backbone(model):
        for p in model.backbone.parameters():
            p.requires_grad_(False)

    result = evaluate("00.2", freeze_backbone)
    assert not result.passed and "head.weight" in result.message


def test_not_attempted_and_crashing_functions():
    def normalize(images, mean, std):
        raise NotImplementedError()

    assert "NOT YET" in evaluate("00.4", normalize).message
    assert "ZeroDivisionError" in evaluate("00.5", lambda logits, labels: 1 / 0).message
    assert "pass your function" in evaluate("00.5", 3).message


def test_check_raises_under_nbgrader(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError, match="FAILED 00.5"):
        check("00.5", lambda logits, labels: 0.0)


def test_unknown_ids_name_the_fix():
    with pytest.raises(QuestionError, match="look like"):
        get_question("1.1")
    with pytest.raises(QuestionError, match="sets/ch99.py"):
        get_question("99.1")


class Sly(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    ("got", "expected"),
    [
        (True, 1),
        (1, True),
        (Sly(0), 5),
        ("1", 1),
        (float("nan"), 0.5),
        (None, 0.0),
        ([1, 2], [1, 2, 3]),
        ({"a": 1}, {"a": 1, "b": 2}),
        (torch.zeros(2, 3), torch.zeros(3, 2)),
        (torch.zeros(3, dtype=torch.float64), torch.zeros(3)),
        (torch.zeros(3), torch.ones(3)),
    ],
)
def test_same_is_strict(got, expected):
    assert same(got, expected) is not None


def test_same_accepts_equal_plain_data():
    assert same({"a": [1, 2.0, torch.ones(2)]}, {"a": [1, 2.0000001, torch.ones(2)]}) is None
    assert same(3, 3.0) is None  # an int where a float is expected


def test_wire_round_trip_is_plain_and_rejects_look_alikes(tmp_path):
    class SlyTensor(torch.Tensor):
        def __eq__(self, other):
            return True

    payload = {
        "n": 3,
        "x": 0.5,
        "flag": True,
        "t": torch.arange(4),
        "sly": Sly(1),
        "sub": torch.zeros(2).as_subclass(SlyTensor),
        "obj": object(),
        "nan": float("nan"),
    }
    dump(payload, tmp_path / "result_00.1")
    back = load(tmp_path / "result_00.1")
    assert back["n"] == 3 and back["flag"] is True and torch.equal(back["t"], torch.arange(4))
    assert type(back["sub"]) is torch.Tensor  # subclasses arrive as plain tensors
    assert all(isinstance(back[k], Unsupported) for k in ("sly", "obj", "nan"))
    assert same(back["sly"], 1) is not None
    assert decode(encode([1, {"a": None}], {}), {}) == [1, {"a": None}]
