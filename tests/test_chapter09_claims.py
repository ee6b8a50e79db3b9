"""The claim of notebooks/09_parameter_efficient.ipynb, checked outside the notebook.

On MiniLM and the tickets task, with the notebook's budget (16 labels per class, batches of 8
grouped by length, 3 epochs, AdamW at the family's learning rate): the LoRA configuration chosen
on the validation split reaches at least ``RATIO`` of full fine-tuning's test accuracy while
training under 1 % of the parameters.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from tlcourse import hf, lora, text_models
from tlcourse.engine import fit
from tlcourse.metrics import accuracy
from tlcourse.repro import seed_everything
from tlcourse.surgery import count_parameters, unfreeze
from tlcourse.tasks import TEXT_TASK

pytestmark = [
    pytest.mark.claims,
    pytest.mark.skipif(not hf.minilm_available(), reason="needs the offline MiniLM package"),
]

MAX_LENGTH, LABELS_PER_CLASS, BATCH_SIZE, EPOCHS, ALPHA = 48, 16, 8, 3, 16
QV = ("query", "value")
ALL_LINEAR = ("query", "key", "value", "intermediate.dense", "output.dense")
LORA_CONFIGS = [(QV, 2), (QV, 16), (ALL_LINEAR, 4)]
LR_FULL, LR_LORA = 1e-4, 3e-3
RATIO = 0.90  # the notebook's tolerance (one seed, a few hundred test messages)


def grouped_batches(split, tokenizer) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The notebook's batches: grouped by length, tokenised once, in a seeded order."""
    order = hf.length_order(split.texts, tokenizer)
    encoded = hf.length_batches(split.texts, tokenizer, BATCH_SIZE, MAX_LENGTH)
    batches = [
        (
            b["input_ids"],
            torch.tensor([split.labels[i] for i in order[k * BATCH_SIZE : (k + 1) * BATCH_SIZE]]),
        )
        for k, b in enumerate(encoded)
    ]
    return [batches[i] for i in np.random.default_rng(0).permutation(len(batches))]


def train(model, batches, lr: float):
    seed_everything(0)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    fit(model, batches, epochs=EPOCHS, optimizer=optimizer, device="cpu", progress=False)
    return model.eval()


def test_best_lora_reaches_full_fine_tuning_with_under_one_percent_trained():
    data = TEXT_TASK.load("quick")
    sub = text_models.few_shot(data.train, LABELS_PER_CLASS, seed=0)
    seed_everything(0)
    pristine, tokenizer = hf.text_classifier(len(data.classes), profile="quick")
    pristine.requires_grad_(False)
    batches = grouped_batches(sub, tokenizer)

    def score(model, split) -> float:
        logits = hf.predict_texts(model, split.texts, tokenizer, max_length=MAX_LENGTH)
        return accuracy(logits, split.labels)

    candidates = []
    for targets, r in LORA_CONFIGS:
        model = unfreeze(lora.inject(copy.deepcopy(pristine), targets, r=r, alpha=ALPHA), "head")
        train(model, batches, LR_LORA)
        share = count_parameters(model, trainable=True) / count_parameters(pristine)
        candidates.append((score(model, data.val), -share, model))
    val_acc, neg_share, best = max(candidates, key=lambda c: (c[0], c[1]))
    full = train(copy.deepcopy(pristine).requires_grad_(True), batches, LR_FULL)
    ratio = score(best, data.test) / score(full, data.test)
    assert -neg_share < 0.01
    assert ratio >= RATIO, f"LoRA / full fine-tuning test accuracy = {ratio:.3f}"
