"""The course's own image backbones (``glyphnet-s``, ``glyphnet-m``), pretrained on Latin glyphs.

Both are small ResNets written as a :class:`~tlcourse.nets.Classifier` whose backbone is an
``nn.Sequential`` of named blocks (``stem``, ``block1`` ..., ``pool``), so chapters can freeze
them by depth. ``python -m tlcourse zoo build glyphnet-s`` trains one on ``glyphs-latin``
(deterministic given the seed) and writes ``tlcourse/assets/zoo/glyphnet-s.safetensors`` (backbone
weights only) and its model card. ImageNet backbones of the full profile live in
:mod:`tlcourse.tvmodels`.

Introduced in notebooks/01_what_is_transfer.ipynb.
"""

from __future__ import annotations

import functools
import time
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from tlcourse import paths
from tlcourse.nets import Classifier, conv_block

# Channel statistics of the glyphs-latin training split (what the backbones were trained with).
GLYPH_MEAN = (0.499, 0.500, 0.498)
GLYPH_STD = (0.229, 0.231, 0.228)
LICENCE = "MIT (weights trained by tlcourse on CC0 glyph images)"


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers plus a shortcut: ``(N, c_in, H, W) -> (N, c_out, H/s, W/s)``."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_block(c_in, c_out, stride)
        self.conv2 = nn.Sequential(
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)
        )
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


# Each architecture: stem width, then (out channels, stride) of every residual block.
ARCHITECTURES: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {
    "glyphnet-s": (24, ((32, 2), (64, 2), (128, 2))),
    "glyphnet-m": (32, ((64, 2), (64, 1), (128, 2), (128, 1), (256, 2))),
}


def glyphnet_backbone(name: str = "glyphnet-s") -> nn.Sequential:
    """The backbone of ``name``: ``(N, 3, 32, 32)`` images -> ``(N, feature_dim)`` features."""
    stem, spec = ARCHITECTURES[name]
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=conv_block(3, stem))
    c_in = stem
    for i, (c_out, stride) in enumerate(spec, start=1):
        layers[f"block{i}"] = ResidualBlock(c_in, c_out, stride)
        c_in = c_out
    layers["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(layers)


def feature_dim(name: str) -> int:
    """Size of the feature vector that backbone ``name`` outputs."""
    return ARCHITECTURES[name][1][-1][0]


def glyphnet(name: str = "glyphnet-s", num_classes: int = 52) -> Classifier:
    """A randomly initialised :class:`Classifier` of architecture ``name`` with a linear head.

    Input ``(N, 3, 32, 32)`` normalised with ``GLYPH_MEAN``/``GLYPH_STD``; logits ``(N, num_classes)``.
    """
    if name not in ARCHITECTURES:
        raise KeyError(f"Unknown glyphnet {name!r}; choose one of {sorted(ARCHITECTURES)}.")
    return Classifier(glyphnet_backbone(name), nn.Linear(feature_dim(name), num_classes))


def weights_path(name: str) -> Path:
    """The shipped weights file of course backbone ``name``."""
    return paths.assets_dir() / "zoo" / f"{name}.safetensors"


def card_path(name: str) -> Path:
    """The shipped model card (Markdown) of course backbone ``name``."""
    return paths.assets_dir() / "zoo" / f"{name}.md"
