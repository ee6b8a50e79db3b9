"""The experiments of "what transfer learning is": labels curves, freeze-k curves, pretraining.

Every run gets the same budget of optimisation steps (``steps_per_epoch * epochs`` batches drawn
with replacement), so a strategy cannot win by seeing more examples:

* :func:`labels_curve` — target accuracy against labels per class for training from scratch, a
  linear probe on cached backbone features, and fine-tuning (``recipes.fine_tune``);
* :func:`freeze_k_curve` — freeze the first ``k`` backbone blocks, train the rest, for each ``k``
  (after Yosinski et al., 2014, "How transferable are features in deep neural networks?");
* :func:`pretrain` and :func:`transferred` — train a backbone on a source set of your choice and
  reuse it, so a chapter can build an unrelated source and measure negative transfer;
* :func:`decision_table` — the best strategy per (target, labels per class), from measurements.

Models come from factories ``make(num_classes) -> Classifier`` (``functools.partial(zoo.load,
name)`` for a pretrained backbone, ``functools.partial(zoo.load, name, pretrained=False)`` for
random weights), so the same
code runs the course backbone on glyphs (quick profile) and ResNet-18 on Pets (full profile).

Introduced in notebooks/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler

from tlcourse import recipes
from tlcourse.datasets.splits import labels_per_class_subset, subset, targets_of
from tlcourse.engine import evaluate, fit
from tlcourse.nets import Classifier
from tlcourse.surgery import blocks, count_parameters, freeze_blocks, replace_head

ModelFactory = Callable[[int], Classifier]
STRATEGIES = ("scratch", "linear probe", "fine-tune")


@dataclass(frozen=True)
class Budget:
    """The training budget of every run of an experiment (the same for all strategies).

    Attributes:
        epochs: passes of ``steps_per_epoch`` batches (fine-tuning spends the first on the head).
        steps_per_epoch: batches per epoch, drawn with replacement from the labelled examples.
        batch_size: examples per batch.
        lr: peak learning rate of fine-tuning and of the freeze-k runs.
        scratch_lr: peak learning rate of training from random weights.
        weight_decay: AdamW weight decay.

    The defaults are the quick-profile budget of notebooks/01_what_is_transfer.ipynb.
    """

    epochs: int = 4
    steps_per_epoch: int = 20
    batch_size: int = 32
    lr: float = 1e-2
    scratch_lr: float = 3e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if self.epochs < 2 or self.steps_per_epoch < 1 or self.batch_size < 1:
            raise ValueError(
                f"Budget needs epochs >= 2 (one for the head, the rest for fine-tuning), "
                f"steps_per_epoch >= 1 and batch_size >= 1; got {self}."
            )

    @property
    def steps(self) -> int:
        """Optimisation steps of one run."""
        return self.epochs * self.steps_per_epoch


# ------------------------------------------------------------------------------------ data


def sampled_loader(dataset: Dataset, budget: Budget, seed: int = 0) -> DataLoader:
    """A loader of exactly ``budget.steps_per_epoch`` batches per epoch, drawn with replacement.

    Runs on 10 or on 500 examples then take the same number of steps; ``num_workers=0``.
    """
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset,
        replacement=True,
        generator=generator,
        num_samples=budget.steps_per_epoch * budget.batch_size,
    )
    return DataLoader(dataset, batch_size=budget.batch_size, sampler=sampler, num_workers=0)


def eval_loader(dataset: Dataset, batch_size: int = 256) -> DataLoader:
    """A deterministic loader for evaluation and feature extraction."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)


# ------------------------------------------------------------------------------ strategies


def one_cycle_fit(model: nn.Module, loader: DataLoader, budget: Budget, lr: float) -> None:
    """Train the trainable parameters of ``model`` for ``budget.steps`` with AdamW + one-cycle."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=budget.weight_decay)
    schedule = recipes.one_cycle(budget.epochs, budget.steps_per_epoch)
    fit(
        model,
        loader,
        epochs=budget.epochs,
        optimizer=optimizer,
        callbacks=[schedule],
        progress=False,
    )


def train_scratch(
    make: ModelFactory, train: Dataset, num_classes: int, budget: Budget, seed: int = 0
) -> Classifier:
    """A model with random weights trained on ``train`` (the no-transfer baseline)."""
    torch.manual_seed(seed)
    model = make(num_classes)
    one_cycle_fit(model, sampled_loader(train, budget, seed), budget, budget.scratch_lr)
    return model


def train_fine_tune(
    make: ModelFactory, train: Dataset, num_classes: int, budget: Budget, seed: int = 0
) -> Classifier:
    """A pretrained model fine-tuned with ``recipes.fine_tune`` (one epoch head, then all layers)."""
    torch.manual_seed(seed)
    model = make(num_classes)
    recipes.fine_tune(
        model,
        sampled_loader(train, budget, seed),
        epochs=budget.epochs - 1,
        lr=budget.lr,
        head_epochs=1,
        weight_decay=budget.weight_decay,
        progress=False,
    )
    return model


def train_frozen(
    make: ModelFactory, train: Dataset, num_classes: int, k: int, budget: Budget, seed: int = 0
) -> Classifier:
    """Freeze the first ``k`` backbone blocks of ``make(num_classes)``, train the rest and the head."""
    torch.manual_seed(seed)
    model = freeze_blocks(make(num_classes), k)
    one_cycle_fit(model, sampled_loader(train, budget, seed), budget, budget.lr)
    return model


def test_accuracy(model: nn.Module, test: Dataset) -> float:
    """Top-1 accuracy of ``model`` on the dataset ``test``."""
    return evaluate(model, eval_loader(test))["accuracy"]


# ------------------------------------------------------------------------------ experiments


def features(
    make: ModelFactory, dataset: Dataset, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached backbone features of ``dataset``: ``(features (N, D), targets (N,))``."""
    backbone = make(num_classes).backbone
    return recipes.extract_features(backbone, eval_loader(dataset))


def labels_curve(
    pretrained: ModelFactory,
    scratch: ModelFactory,
    train: Dataset,
    test: Dataset,
    labels_per_class: Sequence[int] = (1, 5, 20, 50),
    budget: Budget = Budget(),
    strategies: Sequence[str] = STRATEGIES,
    seeds: Sequence[int] = (0,),
    progress: Callable | None = None,
) -> pd.DataFrame:
    """Target accuracy of each strategy at each ``labels_per_class``: one row per run.

    Columns: ``labels_per_class, strategy, seed, accuracy, seconds``. The linear probe is a
    logistic regression on backbone features extracted once (``recipes.logistic_probe``).
    ``progress`` wraps the list of runs (e.g. ``tqdm``) to show a bar.

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"Unknown strategies {sorted(unknown)}; choose from {STRATEGIES}.")
    num_classes = len(np.unique(targets_of(train)))
    cache = {}
    if "linear probe" in strategies:
        cache = {
            "train": features(pretrained, train, num_classes),
            "test": features(pretrained, test, num_classes),
        }
    runs = [(k, s, seed) for seed in seeds for k in labels_per_class for s in strategies]
    rows = [
        _curve_run(k, s, seed, pretrained, scratch, train, test, budget, cache, num_classes)
        for k, s, seed in (progress(runs) if progress else runs)
    ]
    return pd.DataFrame(rows)


def _curve_run(
    k: int,
    strategy: str,
    seed: int,
    pretrained: ModelFactory,
    scratch: ModelFactory,
    train: Dataset,
    test: Dataset,
    budget: Budget,
    cache: dict,
    num_classes: int,
) -> dict:
    start = time.perf_counter()
    idx = labels_per_class_subset(targets_of(train), k, seed)
    if strategy == "linear probe":
        feats, targets = cache["train"]
        accuracy = recipes.logistic_probe((feats[idx], targets[idx]), cache["test"])
    else:
        trainer = train_scratch if strategy == "scratch" else train_fine_tune
        model = trainer(
            scratch if strategy == "scratch" else pretrained,
            subset(train, idx),
            num_classes,
            budget,
            seed,
        )
        accuracy = test_accuracy(model, test)
    return {
        "labels_per_class": k,
        "strategy": strategy,
        "seed": seed,
        "accuracy": accuracy,
        "seconds": time.perf_counter() - start,
    }


def freeze_k_curve(
    make: ModelFactory,
    train: Dataset,
    test: Dataset,
    ks: Sequence[int] | None = None,
    budget: Budget = Budget(),
    seed: int = 0,
    progress: Callable | None = None,
) -> pd.DataFrame:
    """Freeze the first ``k`` backbone blocks, fine-tune the rest (and a new head), for each ``k``.

    ``k = 0`` fine-tunes every layer; ``k = number of blocks`` trains only the head (a linear
    probe trained by SGD). Columns: ``k, frozen, trainable, accuracy, seconds``.

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    num_classes = len(np.unique(targets_of(train)))
    names = [n for n, _ in blocks(make(num_classes))]
    ks = range(len(names) + 1) if ks is None else ks
    rows = []
    for k in progress(list(ks)) if progress else ks:
        start = time.perf_counter()
        model = train_frozen(make, train, num_classes, k, budget, seed)
        rows.append(
            {
                "k": k,
                "frozen": "+".join(names[:k]) or "(none)",
                "trainable": count_parameters(model, trainable=True),
                "accuracy": test_accuracy(model, test),
                "seconds": time.perf_counter() - start,
            }
        )
    return pd.DataFrame(rows)


def pretrain(make: ModelFactory, source: Dataset, budget: Budget, seed: int = 0) -> Classifier:
    """Train ``make(num_classes)`` from random weights on a whole ``source`` set (a pretraining).

    Returns the source model; :func:`transferred` turns it into a factory for target tasks.

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    num_classes = len(getattr(source, "classes", [])) or len(np.unique(targets_of(source)))
    return train_scratch(make, source, num_classes, budget, seed)


def transferred(source_model: Classifier) -> ModelFactory:
    """A factory ``make(num_classes)``: a copy of ``source_model`` with a fresh head."""

    def make(num_classes: int) -> Classifier:
        return replace_head(copy.deepcopy(source_model), num_classes)

    return make


def curve_table(
    results: pd.DataFrame, index: str = "labels_per_class", columns: str = "strategy"
) -> pd.DataFrame:
    """Mean accuracy per ``index`` x ``columns`` (averaged over seeds), for printing and plotting."""
    return results.pivot_table(index=index, columns=columns, values="accuracy", aggfunc="mean")


def decision_table(results: pd.DataFrame) -> pd.DataFrame:
    """The best strategy per (``target``, ``labels_per_class``) and its margin over scratch.

    ``results`` has columns ``target, labels_per_class, strategy, accuracy`` (several targets'
    :func:`labels_curve` outputs concatenated, with a ``target`` column added).

    Introduced in notebooks/01_what_is_transfer.ipynb.
    """
    mean = (
        results.groupby(["target", "labels_per_class", "strategy"])["accuracy"]
        .mean()
        .unstack("strategy")
    )
    best = mean.idxmax(axis=1)
    out = pd.DataFrame({"best": best, "best accuracy": mean.max(axis=1)})
    if "scratch" in mean:
        out["gain over scratch"] = out["best accuracy"] - mean["scratch"]
    return out
