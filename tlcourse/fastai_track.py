"""fastai glue: the course's ImageFolder tasks and backbones in a fastai ``Learner``.

Chapter 05 runs the chapter-04 task with fastai 2. :func:`dataloaders` reads the same
ImageFolder tree (the same training files, picked by the task's label budget) into fastai
``DataLoaders`` with the backbone's normalisation; :func:`learner` wraps a course
:class:`~tlcourse.nets.Classifier` in a ``Learner`` whose splitter puts the backbone and the head
in separate parameter groups, which is what ``freeze``, ``fine_tune`` and discriminative
learning rates (``slice(lo, hi)``) act on.

Introduced in notebooks/05_keras_and_fastai.ipynb.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import fastai.callback.progress  # noqa: F401  (progress bars and learn.no_bar)
import fastai.callback.schedule  # noqa: F401  (fit_one_cycle, fine_tune, lr_find)
import fastai.vision.learner  # noqa: F401  (plot_top_losses / show_results for images)
import numpy as np
from fastai.data.block import CategoryBlock, DataBlock
from fastai.data.core import DataLoaders
from fastai.data.transforms import GrandparentSplitter, Normalize, parent_label
from fastai.learner import Learner
from fastai.losses import CrossEntropyLossFlat
from fastai.metrics import accuracy
from fastai.torch_core import params
from fastai.vision.augment import Resize
from fastai.vision.data import ImageBlock
from torch import nn

from tlcourse import paths
from tlcourse.datasets.imagefolder import image_folder
from tlcourse.repro import pick_device
from tlcourse.surgery import blocks


def task_files(
    root: str | os.PathLike, split: str, indices: Sequence[int] | None = None
) -> list[Path]:
    """The image files of ``root/split`` in ImageFolder order (class, then name), optionally cut to ``indices``.

    ``indices`` index the whole split in that order, which is also the order of
    ``load_tensors`` and of the task's datasets (e.g. ``ImageTask.train_indices``).
    """
    samples = image_folder(root, split).samples
    chosen = range(len(samples)) if indices is None else indices
    return [Path(samples[int(i)][0]) for i in chosen]


def split_targets(root: str | os.PathLike, split: str) -> np.ndarray:
    """Class indices ``(N,)`` of every image of ``root/split``, in ImageFolder order."""
    return np.asarray(image_folder(root, split).targets)


def dataloaders(
    train_files: Sequence[Path],
    valid_files: Sequence[Path],
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 64,
    seed: int = 0,
    size: int | None = None,
    device: str | None = None,
) -> DataLoaders:
    """fastai ``DataLoaders`` over ImageFolder files: batches ``(N, 3, H, W)`` normalised, labels ``(N,)``.

    Labels are the parent folder names; the split comes from the grandparent folder (``train`` /
    ``val``); ``Normalize.from_stats(mean, std)`` uses the backbone's statistics; ``size`` (for
    photos of varied sizes) gives square ``size x size`` crops (fastai's ``Resize``: a random crop
    of the training images, the centre of the validation images). Runs in the
    main process (``num_workers=0``).
    """
    if not train_files or not valid_files:
        raise ValueError(
            "Both train_files and valid_files need images; see fastai_track.task_files."
        )
    valid_name = Path(valid_files[0]).parent.parent.name
    block = DataBlock(
        blocks=(ImageBlock, CategoryBlock),
        get_items=lambda _: [*map(Path, train_files), *map(Path, valid_files)],
        get_y=parent_label,
        splitter=GrandparentSplitter(
            train_name=Path(train_files[0]).parent.parent.name, valid_name=valid_name
        ),
        item_tfms=Resize(size) if size else None,
        batch_tfms=Normalize.from_stats(list(mean), list(std)),
    )
    return block.dataloaders(
        None, bs=batch_size, num_workers=0, seed=seed, device=pick_device(device)
    )


def backbone_head_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """Two parameter groups for fastai: ``[backbone parameters, head parameters]``.

    ``learn.freeze()`` then trains only the last group (the head), and
    ``slice(lo, hi)`` gives the backbone ``lo`` and the head ``hi``.
    """
    return [params(model.backbone), params(model.head)]


def block_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """One parameter group per backbone block (``stem``, ``block1`` …) and one for the head."""
    return [params(block) for _, block in blocks(model)] + [params(model.head)]


def learner(
    dls: DataLoaders,
    model: nn.Module,
    *,
    splitter=backbone_head_splitter,
    path: str | os.PathLike | None = None,
    train_bn: bool = True,
) -> Learner:
    """A fastai ``Learner`` for a course :class:`~tlcourse.nets.Classifier` with cross-entropy and accuracy.

    ``path`` is where fastai keeps temporary files (``lr_find`` saves the weights there):
    default ``cache_dir("fastai")``, never the working directory. ``train_bn=True`` is fastai's
    default: BatchNorm layers keep training even in frozen groups.
    """
    n_out = model.head.out_features if isinstance(model.head, nn.Linear) else None
    if n_out is not None and n_out != dls.c:
        raise ValueError(
            f"The model's head has {n_out} outputs but the data has {dls.c} classes; "
            f"use surgery.replace_head(model, {dls.c}) or zoo.load(name, num_classes={dls.c})."
        )
    folder = Path(path) if path is not None else paths.cache_dir("fastai")
    return Learner(
        dls,
        model,
        loss_func=CrossEntropyLossFlat(),
        splitter=splitter,
        metrics=accuracy,
        path=folder,
        train_bn=train_bn,
    )


def test_accuracy(learn: Learner, files: Sequence[Path]) -> float:
    """Accuracy of ``learn`` on labelled image ``files`` (labels from their folder names)."""
    dl = learn.dls.test_dl([Path(f) for f in files], with_labels=True)
    with learn.no_bar(), learn.no_logging():
        probs, targets = learn.get_preds(dl=dl)
    return float((probs.argmax(1) == targets).float().mean())


def trainable_per_group(learn: Learner) -> list[int]:
    """Trainable parameter elements in each of the learner's parameter groups (after ``freeze``/``unfreeze``)."""
    return [
        sum(p.numel() for p in group if p.requires_grad) for group in learn.splitter(learn.model)
    ]
