"""The Hugging Face ``transformers`` ``Trainer``, set up to do exactly what :func:`tlcourse.engine.fit` does.

Chapter 07 trains the same :class:`~tlcourse.hf.TextClassifier` twice, once with the course's
plain loop and once with ``Trainer``, and shows that the two give the same model. For that the
Trainer's defaults that differ from the plain loop are switched off, each for a reason:

- ``lr_scheduler_type="constant"`` (Trainer decays the rate linearly by default);
- ``weight_decay=0.0`` (Trainer exempts biases and LayerNorm weights from decay; AdamW in
  ``fit`` would not, so neither decays);
- ``optim="adamw_torch"`` (the same ``torch.optim.AdamW`` as ``fit``; recent versions default to
  the fused kernel, equal up to rounding);
- ``max_grad_norm=0.0`` (Trainer clips gradients to norm 1 by default; ``fit`` does not clip);
- ``train_sampling_strategy="sequential"`` (both read the examples in the given order; shuffle
  the data once beforehand);
- ``report_to="none"``, ``save_strategy="no"``, a temporary ``output_dir``: no logging service,
  no checkpoints, nothing written to the working folder.

Imported only where used (it imports ``transformers``).

Introduced in notebooks/07_text_finetuning.ipynb.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import PrinterCallback, Trainer, TrainingArguments, default_data_collator

from tlcourse.engine import History
from tlcourse.hf import MAX_LENGTH, tokenize
from tlcourse.progress import progress_enabled
from tlcourse.repro import pick_device


class TokenDataset(Dataset):
    """Examples ``{"input_ids": (T,), "labels": ()}`` for ``Trainer``, padded alike (as :func:`~tlcourse.hf.text_loader`)."""

    def __init__(
        self, texts: Sequence[str], labels: Sequence[int], tokenizer, max_length: int = MAX_LENGTH
    ) -> None:
        self.input_ids = tokenize(texts, tokenizer, max_length)
        self.labels = torch.as_tensor(list(labels))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def cross_entropy_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_items_in_batch=None
) -> torch.Tensor:
    """The loss ``fit`` uses, in the form ``Trainer(compute_loss_func=...)`` calls: mean cross-entropy."""
    return nn.functional.cross_entropy(logits, labels)


def trainer_arguments(
    output_dir: str,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    use_cpu: bool = True,
    progress: bool | None = None,
) -> TrainingArguments:
    """``TrainingArguments`` that match :func:`tlcourse.engine.fit` with ``AdamW(lr, weight_decay=0)``."""
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=epochs,
        learning_rate=lr,
        per_device_train_batch_size=batch_size,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        optim="adamw_torch",
        max_grad_norm=0.0,
        train_sampling_strategy="sequential",
        seed=seed,
        use_cpu=use_cpu,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="epoch",
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress_enabled(progress),
    )


def trainer_fit(
    model: nn.Module,
    texts: Sequence[str],
    labels: Sequence[int],
    tokenizer,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    max_length: int = MAX_LENGTH,
    device: str | None = None,
    progress: bool | None = None,
) -> History:
    """Train ``model`` (token ids ``(N, T)`` -> logits ``(N, C)``) with ``transformers.Trainer``.

    Same data order, optimizer, loss and rate as ``fit(model, text_loader(texts, labels, tokenizer,
    batch_size=batch_size), epochs=epochs, optimizer=AdamW(params, lr, weight_decay=0))``; the
    Trainer seeds the random generators with ``seed`` before training (as ``seed_everything``).
    Returns a :class:`~tlcourse.engine.History` with the Trainer's per-epoch ``train_loss``.
    """
    use_cpu = pick_device(device).type == "cpu"
    with tempfile.TemporaryDirectory(prefix="tlcourse-trainer-") as tmp:
        args = trainer_arguments(
            tmp,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            use_cpu=use_cpu,
            progress=progress,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=TokenDataset(texts, labels, tokenizer, max_length),
            data_collator=default_data_collator,
            compute_loss_func=cross_entropy_loss,
        )
        # Without a progress bar the Trainer would print every log line; the History has them.
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return trainer_history(trainer.state.log_history)


def trainer_history(log_history: list[dict]) -> History:
    """The Trainer's per-epoch logs (``{"loss": ..., "epoch": ...}``) as a course :class:`History`."""
    rows = [row for row in log_history if "loss" in row and "epoch" in row]
    return History(
        [{"epoch": round(row["epoch"]), "train_loss": float(row["loss"])} for row in rows]
    )
