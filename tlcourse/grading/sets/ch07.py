"""Chapter 07 (text fine-tuning): padding and truncation, masked max pooling, a sentence
classifier's logits from an encoder, and macro-F1.

The reference answers live in the solution notebook (solutions/), never here; the learner
writes their own in exercises/07_text_finetuning.ipynb. ``transformers`` is imported only when the cases of
07.3 are built (a tiny random BERT), so loading this question set stays fast.

Introduced in exercises/07_text_finetuning.ipynb.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from tlcourse.grading.questions import OpenQuestion, Question, same

CLS, SEP, PAD = 101, 102, 0


def close(got: Any, expected: Any) -> str | None:
    """:func:`same` with a float tolerance for answers that may sum in another order."""
    return same(got, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ 07.1 pad and truncate


def cases_pad(gen: torch.Generator) -> list[tuple]:
    """Lists [CLS] ... [SEP] of random lengths; max_length above, within and below the longest."""
    cases = []
    for n, max_length, pad_id in ((3, 64, 0), (4, 6, 0), (5, 8, 7)):
        lengths = torch.randint(3, 11, (n,), generator=gen).tolist()
        lists = [
            [CLS, *torch.randint(1000, 2000, (k - 2,), generator=gen).tolist(), SEP]
            for k in lengths
        ]
        cases.append((lists, pad_id, max_length))
    return cases


# ------------------------------------------------------------------------ 07.2 masked max


def cases_masked_max(gen: torch.Generator) -> list[tuple]:
    """Right-padded masks, a left-padded one and one without padding; the real vectors are mostly
    negative and the padded positions hold large values, so padding would win a plain max."""
    cases = []
    for n, t, d, side in ((3, 5, 4, "right"), (4, 7, 6, "left"), (2, 3, 5, "none")):
        lengths = (
            torch.randint(1, t, (n,), generator=gen) if side != "none" else torch.full((n,), t)
        )
        mask = (torch.arange(t).expand(n, t) < lengths.unsqueeze(1)).long()
        mask = mask.flip(1) if side == "left" else mask
        hidden = torch.randn(n, t, d, generator=gen) - 1.0
        padding = 3.0 + torch.rand(n, t, d, generator=gen)
        cases.append((torch.where(mask.unsqueeze(-1) == 1, hidden, padding), mask))
    return cases


# -------------------------------------------------------------- 07.3 sentence classifier


def _tiny_bert(gen: torch.Generator, vocab_size: int) -> nn.Module:
    # The modules themselves, not ``transformers``' lazy top level: the batch grader prepares
    # submissions in threads, and two threads resolving lazy names at once can fail.
    from transformers.models.bert.configuration_bert import BertConfig
    from transformers.models.bert.modeling_bert import BertModel

    config = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=32)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
        return BertModel(config).eval()


def cases_sentence_logits(gen: torch.Generator) -> list[tuple]:
    """A tiny random BERT (eval mode), a linear head and right-padded token ids."""
    cases = []
    for n, t, num_classes, pad_id in ((3, 6, 2, 0), (4, 9, 5, 0), (2, 5, 3, 1)):
        encoder = _tiny_bert(gen, vocab_size=50)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
            head = nn.Linear(16, num_classes)
        ids = torch.randint(2, 50, (n, t), generator=gen)
        lengths = torch.randint(2, t + 1, (n,), generator=gen)
        lengths[0] = t  # the longest row has no padding
        ids[torch.arange(t).expand(n, t) >= lengths.unsqueeze(1)] = pad_id
        cases.append((encoder, head, ids, pad_id))
    return cases


# ---------------------------------------------------------------------------- 07.4 macro-F1


def cases_macro_f1(gen: torch.Generator) -> list[tuple]:
    """Every class occurs in ``labels``; one case never predicts some classes (0/0 precision)."""
    cases = []
    for n, c, never in ((20, 3, False), (37, 5, True), (12, 2, False)):
        labels = torch.cat([torch.arange(c), torch.randint(0, c, (n - c,), generator=gen)])
        labels = labels[torch.randperm(n, generator=gen)]
        predictions = torch.where(
            torch.rand(n, generator=gen) < 0.6, labels, torch.randint(0, c, (n,), generator=gen)
        )
        if never:
            predictions = predictions.clamp(max=c - 3)  # classes c-2 and c-1 are never predicted
        cases.append((predictions, labels, c))
    return cases


QUESTIONS = [
    Question(
        id="07.1",
        function="pad_and_truncate",
        points=2,
        title="pad, truncate and mask a batch",
        cases=cases_pad,
        hint="the width is min(max_length, longest list); a list that is too long keeps its first "
        "width - 1 ids and ends with its own last id ([SEP]); pad with pad_id; the mask is 1 on kept ids; "
        "both tensors torch.long.",
    ),
    Question(
        id="07.2",
        function="masked_max",
        points=2,
        title="max-pool token vectors with the attention mask",
        cases=cases_masked_max,
        compare=close,
        hint="padding must never win the maximum, whatever the real values are (negative ones "
        "too): what could stand at a padded position that no real number loses to?",
    ),
    Question(
        id="07.3",
        function="sentence_logits",
        points=3,
        title="logits of a sentence classifier",
        cases=cases_sentence_logits,
        compare=close,
        hint="the mask is (input_ids != pad_id); pass it to the encoder as attention_mask, mean-pool "
        "last_hidden_state with the same mask, then apply the head.",
    ),
    Question(
        id="07.4",
        function="macro_f1",
        points=2,
        title="macro-F1 by hand",
        cases=cases_macro_f1,
        hint="for each class c: precision = TP / predicted c, recall = TP / true c, F1 = 2PR / (P + R), "
        "taking 0 whenever a denominator is 0; average over all num_classes classes; return a Python float.",
    ),
    OpenQuestion(
        id="07.5", points=2, title="frozen encoder or full fine-tuning for a support desk?"
    ),
]
