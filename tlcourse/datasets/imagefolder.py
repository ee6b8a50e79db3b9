"""ImageFolder trees (``root/{train,val,test}/<class>/<image>``): checks, loaders, tensor cache.

:func:`check_image_folder` finds the usual mistakes before training starts (missing folder,
wrong layout, an empty class folder, an unreadable image) and says how to fix each.
:func:`image_folder` returns a torchvision ``ImageFolder``; :func:`load_tensors` decodes a split
once into uint8 tensors, cached next to the tree, so short training runs are not spent
decoding PNG files.

Introduced in notebooks/13_export_and_deployment.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from tlcourse.atomic import atomic_write

SPLITS = ("train", "val", "test")
MARKER = ".tlcourse-dataset.json"


class ImageFolderError(ValueError):
    """An image folder tree is not usable; the message says how to fix it."""


def _rebuild_hint(root: Path) -> str:
    """How to rebuild ``root``: the course command if it is a course dataset."""
    try:
        name = json.loads((root / MARKER).read_text())["name"]
    except (OSError, ValueError, KeyError):
        return "or replace it with a good copy"
    return (
        f"or delete the folder {root} and rebuild it with `python -m tlcourse data prepare {name}`"
    )


def read_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB; an unreadable file raises :class:`ImageFolderError` naming it."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageFolderError(
            f"Cannot read the image {path} ({type(err).__name__}: {err}). The file is corrupt or "
            f"not an image: delete it, {_rebuild_hint(path.parents[2])}."
        ) from err


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMG_EXTENSIONS


def check_image_folder(
    root: str | Path, splits: Sequence[str] = SPLITS, *, verify: bool = False
) -> list[str]:
    """Check the layout ``root/<split>/<class>/<image>`` and return the sorted class names.

    Raises ``FileNotFoundError`` (no folder) or :class:`ImageFolderError` (wrong layout, an
    empty class folder, class folders that differ between splits, and with ``verify=True`` an
    unreadable image), each naming the fix.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"The dataset folder {root} does not exist. Check the path, or build a course dataset "
            "with `python -m tlcourse data prepare NAME` (see `python -m tlcourse data list`)."
        )
    _check_splits_present(root, splits)
    classes = None
    for split in splits:
        found = _check_classes(root / split)
        if classes is not None and found != classes:
            raise ImageFolderError(
                f"{root / split} has classes {sorted(set(found) ^ set(classes))} that the other splits "
                f"lack (or vice versa). Every split needs the same class folders; {_rebuild_hint(root)}."
            )
        classes = found
        if verify:
            for file in sorted((root / split).glob("*/*")):
                read_rgb(file)
    return classes


def _check_splits_present(root: Path, splits: Sequence[str]) -> None:
    missing = [s for s in splits if not (root / s).is_dir()]
    if not missing:
        return
    looks_like_split = any(_is_image(p) for p in root.glob("*/*"))
    hint = (
        f" {root} holds class folders directly: put them under {root}/train (and val/, test/)."
        if looks_like_split
        else ""
    )
    raise ImageFolderError(
        f"{root} is not laid out as an image dataset: missing the {', '.join(missing)} folder(s). "
        f"Expected {root}/train/<class>/<image>.png, and the same under val/ and test/.{hint}"
    )


def _check_classes(split_dir: Path) -> list[str]:
    classes = sorted(
        p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not classes:
        raise ImageFolderError(
            f"{split_dir} has no class folders. Put each class's images in {split_dir}/<class>/."
        )
    for c in classes:
        if not any(_is_image(p) for p in (split_dir / c).iterdir()):
            raise ImageFolderError(
                f"The class folder {split_dir / c} is empty (no {'/'.join(IMG_EXTENSIONS[:3])} ... "
                f"images). Add images to it, remove the class from every split, "
                f"{_rebuild_hint(split_dir.parent)}."
            )
    return classes


def image_folder(
    root: str | Path, split: str = "train", transform: Callable | None = None
) -> ImageFolder:
    """The ``split`` of the tree at ``root`` as a torchvision ``ImageFolder`` (checked first).

    Items are ``(transform(PIL image), class index)``; unreadable files raise a clear error.
    """
    check_image_folder(root, (split,))
    return ImageFolder(str(Path(root) / split), transform=transform, loader=read_rgb)


class TensorImageDataset(Dataset):
    """Images held in memory: ``images (N, C, H, W)`` uint8, ``targets (N,)`` int64.

    ``dataset[i]`` is ``(transform(images[i]), targets[i])``; with no transform the image stays a
    uint8 tensor (use the backbone's ``zoo.preprocessing(name)`` as transform).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        classes: Sequence[str],
        transform: Callable | None = None,
    ) -> None:
        if images.ndim != 4 or len(images) != len(targets):
            raise ValueError(
                f"images must be (N, C, H, W) with one target each; got images {tuple(images.shape)} "
                f"and {len(targets)} targets."
            )
        self.images, self.targets = images, torch.as_tensor(targets, dtype=torch.int64)
        self.classes, self.transform = list(classes), transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        return (self.transform(image) if self.transform else image), int(self.targets[index])

    def subset(self, indices: Sequence[int]) -> TensorImageDataset:
        """A new dataset with only ``indices`` (e.g. from ``splits.labels_per_class_subset``)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return TensorImageDataset(self.images[idx], self.targets[idx], self.classes, self.transform)


def _cache_file(root: Path, split: str) -> Path:
    return root / f".tensors-{split}.safetensors"


def _fingerprint(root: Path, split: str, count: int) -> str:
    marker = (root / MARKER).read_text() if (root / MARKER).is_file() else ""
    return json.dumps({"marker": marker, "split": split, "count": count})


def save_tensor_cache(
    root: Path, split: str, images: np.ndarray, targets: np.ndarray, classes: Sequence[str]
) -> None:
    """Cache ``images (N, H, W, 3)`` uint8 of ``root/split`` as uint8 ``(N, 3, H, W)`` safetensors."""
    tensors = {
        "images": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
        "targets": torch.as_tensor(targets, dtype=torch.int64),
    }
    meta = {
        "fingerprint": _fingerprint(root, split, len(targets)),
        "classes": json.dumps(list(classes)),
    }
    atomic_write(_cache_file(root, split), lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_tensors(
    root: str | Path, split: str = "train", transform: Callable | None = None
) -> TensorImageDataset:
    """Decode ``root/split`` once into a :class:`TensorImageDataset` (cached as safetensors).

    The cache is reused while the tree's marker and image count are unchanged. All images of
    the split must have the same size.
    """
    root = Path(root)
    folder = image_folder(root, split)
    cache = _cache_file(root, split)
    if cache.is_file():
        from safetensors import safe_open

        with safe_open(str(cache), "pt") as fh:
            meta = fh.metadata() or {}
        if meta.get("fingerprint") == _fingerprint(root, split, len(folder)):
            tensors = load_file(str(cache))
            classes = json.loads(meta["classes"])
            return TensorImageDataset(tensors["images"], tensors["targets"], classes, transform)
    images = _decode_all(folder)
    save_tensor_cache(root, split, images, np.asarray(folder.targets), folder.classes)
    return load_tensors(root, split, transform)


def _decode_all(folder: ImageFolder) -> np.ndarray:
    """Every image of ``folder`` as one ``(N, H, W, 3)`` uint8 array."""
    arrays = [np.asarray(read_rgb(path)) for path, _ in folder.samples]
    sizes = {a.shape for a in arrays}
    if len(sizes) > 1:
        odd = next(
            p
            for (p, _), a in zip(folder.samples, arrays, strict=True)
            if a.shape != arrays[0].shape
        )
        raise ImageFolderError(
            f"Images in {folder.root} differ in size ({sorted(sizes)}), e.g. {odd}. load_tensors "
            "needs one size: resize them, or use image_folder(...) with a Resize transform."
        )
    return np.stack(arrays)


class _NormalizeBatch:
    """Collate ``(uint8 image, label)`` items into ``(float (N, C, H, W), int64 (N,))``, normalised."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, items: list) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([torch.as_tensor(image) for image, _ in items]).float().div_(255)
        y = torch.tensor([label for _, label in items], dtype=torch.int64)
        return (x - self.mean) / self.std, y


def tensor_loader(
    dataset: TensorImageDataset,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A ``DataLoader`` of normalised float batches ``(N, 3, H, W)`` from uint8 tensors.

    Normalises a whole batch at once (much faster than a per-image transform); ``dataset``
    must have no transform of its own. Shuffling is repeatable from ``seed``.
    """
    if dataset.transform is not None:
        raise ValueError(
            "tensor_loader normalises batches itself: build the dataset with transform=None."
        )
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        num_workers=0,
        collate_fn=_NormalizeBatch(mean, std),
    )


def write_class(folder: Path, images: np.ndarray) -> None:
    """Write ``images (n, H, W, 3)`` uint8 as ``folder/<nnnnn>.png``."""
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{i:05d}.png", compress_level=1)
