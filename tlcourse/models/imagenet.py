"""Full-profile ImageNet backbones from torchvision, by their weight enums, as Classifiers.

Each torchvision model is regrouped into a :class:`~tlcourse.nets.Classifier`: its backbone an
``nn.Sequential`` of named blocks (``stem``, ``block1`` ..., ``pool``) so that freezing by depth
works as for the course backbones; its ImageNet classifier is replaced by a fresh linear head.
Weights download through torchvision into the torch hub cache (``$TORCH_HOME/hub/checkpoints``);
preprocessing comes from the weights' own metadata (``weights.transforms()``).

Introduced in notebooks/03_choosing_a_model.ipynb.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from tlcourse.models.entry import ZooEntry
from tlcourse.nets import Classifier

LICENCE = "BSD-3-Clause code; ImageNet weights (non-commercial terms)"


def _resnet_blocks(model: models.ResNet) -> tuple[OrderedDict, int]:
    blocks = OrderedDict(stem=nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool))
    for i in range(1, 5):
        blocks[f"block{i}"] = getattr(model, f"layer{i}")
    blocks["pool"] = nn.Sequential(model.avgpool, nn.Flatten())
    return blocks, model.fc.in_features


def _features_blocks(
    model: nn.Module, pool_tail: list[nn.Module], dim: int
) -> tuple[OrderedDict, int]:
    """MobileNet / EfficientNet: ``features[0]`` is the stem, the rest are blocks."""
    blocks = OrderedDict(stem=model.features[0])
    for i, layer in enumerate(model.features[1:], start=1):
        blocks[f"block{i}"] = layer
    blocks["pool"] = nn.Sequential(model.avgpool, nn.Flatten(), *pool_tail)
    return blocks, dim


def _mobilenet_blocks(model: models.MobileNetV3) -> tuple[OrderedDict, int]:
    # Keep the pretrained 960 -> 1280 projection (with its Hardswish) as part of the pool.
    return _features_blocks(model, list(model.classifier[:3]), model.classifier[0].out_features)


def _efficientnet_blocks(model: models.EfficientNet) -> tuple[OrderedDict, int]:
    return _features_blocks(model, [], model.classifier[1].in_features)


class ViTStem(nn.Module):
    """Patchify, prepend the class token, add position embeddings: ``(N, 3, H, W) -> (N, 1 + P, D)``."""

    def __init__(self, vit: models.VisionTransformer) -> None:
        super().__init__()
        self.conv_proj, self.class_token = vit.conv_proj, vit.class_token
        self.pos_embedding, self.dropout = vit.encoder.pos_embedding, vit.encoder.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.dropout(x + self.pos_embedding)


class ClassToken(nn.Module):
    """The final LayerNorm, then the class token's features: ``(N, 1 + P, D) -> (N, D)``."""

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)[:, 0]


def _vit_blocks(model: models.VisionTransformer) -> tuple[OrderedDict, int]:
    blocks = OrderedDict(stem=ViTStem(model))
    for i, layer in enumerate(model.encoder.layers, start=1):
        blocks[f"block{i}"] = layer
    blocks["pool"] = ClassToken(model.encoder.ln)
    return blocks, model.hidden_dim


# name -> (torchvision builder, weights enum, regrouping function)
MODELS = {
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, _resnet_blocks),
    "resnet50": (models.resnet50, models.ResNet50_Weights.IMAGENET1K_V2, _resnet_blocks),
    "mobilenet_v3_large": (models.mobilenet_v3_large, models.MobileNet_V3_Large_Weights.IMAGENET1K_V2, _mobilenet_blocks),
    "efficientnet_b0": (models.efficientnet_b0, models.EfficientNet_B0_Weights.IMAGENET1K_V1, _efficientnet_blocks),
    "vit_b_16": (models.vit_b_16, models.ViT_B_16_Weights.IMAGENET1K_V1, _vit_blocks),
}  # fmt: skip


def backbone_from(name: str, model: nn.Module) -> tuple[nn.Sequential, int]:
    """Regroup torchvision ``model`` into a named-block backbone; return it and its feature size."""
    blocks, dim = MODELS[name][2](model)
    return nn.Sequential(blocks), dim


def build(name: str, num_classes: int) -> Classifier:
    """Architecture ``name`` with random weights and a ``num_classes`` head (no download)."""
    backbone, dim = backbone_from(name, MODELS[name][0](weights=None))
    return Classifier(backbone, nn.Linear(dim, num_classes))


def checkpoint_path(name: str) -> Path:
    """Where torchvision keeps (or will download) the weights of ``name``."""
    url = MODELS[name][1].url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def is_cached(name: str) -> bool:
    """True when the weights of ``name`` are already in the torch hub cache (no download needed)."""
    return checkpoint_path(name).is_file()


def load_backbone(name: str) -> nn.Sequential:
    """The ImageNet-pretrained backbone of ``name`` (downloads once into the torch hub cache).

    Offline and not cached, raises ``ConnectionError`` saying which file to put where.
    """
    builder, weights, _ = MODELS[name]
    try:
        model = builder(weights=weights)
    except OSError as err:  # URLError, socket errors: no network
        raise ConnectionError(
            f"Cannot download the {weights} weights of {name!r} ({err}). Download {weights.url} "
            f"on a connected machine and put it at {checkpoint_path(name)}, or use the quick "
            "profile's course backbones (e.g. 'glyphnet-s')."
        ) from err
    return backbone_from(name, model)[0]


def _entry(name: str) -> ZooEntry:
    weights = MODELS[name][1]
    t = weights.transforms()
    card = (
        f"# {name}\n\ntorchvision `{type(weights).__name__}.{weights.name}` ({weights.meta['recipe']}).\n"
        f"- Data: ImageNet-1k. Top-1 {weights.meta['_metrics']['ImageNet-1K']['acc@1']}%.\n"
        f"- Preprocessing: resize {t.resize_size}, centre crop {t.crop_size}, mean {t.mean}, std {t.std}.\n"
        f"- Parameters: {weights.meta['num_params']:,}; download {weights.meta['_file_size']} MB.\n"
        f"- Licence: {LICENCE}.\n"
    )
    return ZooEntry(
        name=name,
        modality="image",
        profile="full",
        build=functools.partial(build, name),
        weights=weights.url,
        mean=tuple(t.mean),
        std=tuple(t.std),
        input_size=(3, t.crop_size[0], t.crop_size[-1]),
        licence=LICENCE,
        card=card,
        load_backbone=functools.partial(load_backbone, name),
        resize_size=t.resize_size[0],
        interpolation=t.interpolation.value,
        available=functools.partial(is_cached, name),
        num_params=weights.meta["num_params"],
    )


# The torchvision ImageNet backbones, listed in :data:`tlcourse.zoo.FAMILIES`.
ZOO: dict[str, ZooEntry] = {name: _entry(name) for name in MODELS}
