"""Network shapes shared by the course: a ``Classifier`` = ``backbone`` + ``head``.

Every image and audio model in the course (the course zoo, wrapped torchvision models, the
tiny models of the tests) is a :class:`Classifier`, so head replacement, freezing by block and
parameter groups work the same way on all of them.

Introduced in notebooks/02_preparing_data.ipynb.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from tlcourse.guards import check_num_classes


class Classifier(nn.Module):
    """``head(backbone(x))``: a feature extractor followed by a linear head.

    Args:
        backbone: maps inputs ``(N, ...)`` to features ``(N, feature_dim)``; an ``nn.Sequential``
            of named blocks (``stem``, ``block1`` … ``pool``) so layers can be frozen by depth.
        head: maps features ``(N, feature_dim)`` to logits ``(N, num_classes)``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    @property
    def num_classes(self) -> int:
        """Output size of the head (the last ``nn.Linear`` in it)."""
        linears = [m for m in self.head.modules() if isinstance(m, nn.Linear)]
        return linears[-1].out_features


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution, BatchNorm, ReLU: ``(N, c_in, H, W) -> (N, c_out, H/stride, W/stride)``."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def tiny_cnn(num_classes: int = 10, in_channels: int = 3, width: int = 16) -> Classifier:
    """A three-block CNN (~20k parameters at width 16) for tests and the welcome notebook.

    Input ``(N, in_channels, H, W)`` with H, W >= 8; output logits ``(N, num_classes)``.
    """
    num_classes = check_num_classes(num_classes, "tiny_cnn")
    backbone = nn.Sequential(
        OrderedDict(
            stem=conv_block(in_channels, width),
            block1=conv_block(width, 2 * width, stride=2),
            block2=conv_block(2 * width, 4 * width, stride=2),
            pool=nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        )
    )
    return Classifier(backbone, nn.Linear(4 * width, num_classes))
