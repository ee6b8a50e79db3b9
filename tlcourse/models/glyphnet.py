"""The course's own image backbones (``glyphnet-s``, ``glyphnet-m``), pretrained on Latin glyphs.

Both are small ResNets written as a :class:`~tlcourse.nets.Classifier` whose backbone is an
``nn.Sequential`` of named blocks (``stem``, ``block1`` ..., ``pool``), so chapters can freeze
them by depth. ``python -m tlcourse zoo build glyphnet-s`` trains one on ``glyphs-latin``
(deterministic given the seed) and writes ``tlcourse/assets/zoo/glyphnet-s.safetensors`` (backbone
weights only) and its model card. ImageNet backbones of the full profile live in
:mod:`tlcourse.models.imagenet`.

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
from tlcourse.atomic import atomic_write, write_text
from tlcourse.models.entry import ZooEntry
from tlcourse.nets import Classifier, conv_block
from tlcourse.surgery import count_parameters

# Channel statistics of the glyphs-latin training split (what the backbones were trained with).
GLYPH_MEAN = (0.501, 0.500, 0.499)
GLYPH_STD = (0.268, 0.266, 0.267)
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


# Each architecture: (stem width, stem stride), then (out channels, stride) of every residual block.
# glyphnet-s: narrow, full resolution stem, 3 blocks (~0.3M parameters, ~12M multiply-adds).
# glyphnet-m: 4x wider at the end, stride-2 stem, 3 blocks (~1.2M parameters, ~45M multiply-adds).
ARCHITECTURES: dict[str, tuple[tuple[int, int], tuple[tuple[int, int], ...]]] = {
    "glyphnet-s": ((16, 1), ((32, 2), (64, 2), (128, 2))),
    "glyphnet-m": ((32, 2), ((64, 1), (128, 2), (256, 2))),
}


def glyphnet_backbone(name: str = "glyphnet-s") -> nn.Sequential:
    """The backbone of ``name``: ``(N, 3, 32, 32)`` images -> ``(N, feature_dim)`` features."""
    (stem, stem_stride), spec = ARCHITECTURES[name]
    layers: OrderedDict[str, nn.Module] = OrderedDict(stem=conv_block(3, stem, stem_stride))
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


# Training recipe of the course backbones (what `zoo build` runs).
RECIPES = {
    "glyphnet-s": {"epochs": 3, "lr": 3e-3, "batch_size": 128, "weight_decay": 5e-4},
    "glyphnet-m": {"epochs": 1, "lr": 3e-3, "batch_size": 128, "weight_decay": 5e-4},
}
SOURCE = "glyphs-latin"


def _source_loaders(batch_size: int, seed: int, max_train: int | None):
    """Normalised train / test loaders of the source task ``glyphs-latin``."""
    from tlcourse.datasets import catalog, splits
    from tlcourse.datasets.imagefolder import tensor_loader

    train = catalog.load(SOURCE, "train")
    if max_train is not None and max_train < len(train):
        per_class = max(1, max_train // len(train.classes))
        train = train.subset(splits.labels_per_class_subset(train.targets, per_class, seed))
    test = catalog.load(SOURCE, "test")
    make = functools.partial(tensor_loader, mean=GLYPH_MEAN, std=GLYPH_STD, batch_size=batch_size)
    return make(train, shuffle=True, seed=seed), make(test)


def train(
    name: str,
    seed: int = 0,
    *,
    out_dir: str | Path | None = None,
    epochs: int | None = None,
    max_train: int | None = None,
    progress: bool | None = None,
) -> dict:
    """Pretrain course backbone ``name`` on ``glyphs-latin``; write its weights and model card.

    Deterministic given ``seed`` (on the same machine and thread count). ``epochs`` and
    ``max_train`` (training images) shrink the run for tests. Returns the card's numbers.
    """
    from tlcourse.engine import evaluate, fit
    from tlcourse.recipes import one_cycle
    from tlcourse.repro import seed_everything

    recipe = {**RECIPES[name], **({"epochs": epochs} if epochs else {})}
    seed_everything(seed)
    train_loader, test_loader = _source_loaders(recipe["batch_size"], seed, max_train)
    model = glyphnet(name, num_classes=len(train_loader.dataset.classes))
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"]
    )
    schedule = one_cycle(recipe["epochs"], len(train_loader))
    history = fit(
        model,
        train_loader,
        epochs=recipe["epochs"],
        optimizer=optimizer,
        device="cpu",
        loss_fn=nn.CrossEntropyLoss(label_smoothing=0.1),
        callbacks=[schedule],
        progress=progress,
    )
    result = {"name": name, "seed": seed, **recipe, "train_images": len(train_loader.dataset)}
    result["train_accuracy"] = history.last("train_accuracy")
    result["test_accuracy"] = evaluate(model, test_loader, device="cpu")["accuracy"]
    seconds = round(time.perf_counter() - start, 1)
    result |= {
        "build_seconds": seconds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    save_backbone(model.backbone, name, result, out_dir)
    return result


def save_backbone(
    backbone: nn.Module,
    name: str,
    result: dict,
    out_dir: str | Path | None = None,
    write_card: bool = True,
) -> Path:
    """Atomically write ``backbone``'s weights (safetensors, with ``architecture`` and ``result``
    as metadata) and, if ``write_card``, its model card from the training ``result``."""
    from safetensors.torch import save_file

    out = Path(out_dir) if out_dir else weights_path(name).parent
    tensors = {k: v.detach().contiguous().clone() for k, v in backbone.state_dict().items()}
    meta = {"architecture": name, **{k: str(v) for k, v in result.items()}}
    path = atomic_write(
        out / f"{name}.safetensors", lambda tmp: save_file(tensors, str(tmp), metadata=meta)
    )
    if write_card:
        write_text(out / f"{name}.md", model_card(name, result))
    return path


def model_card(name: str, result: dict) -> str:
    """The Markdown model card of a course backbone from its training ``result``."""
    params = count_parameters(glyphnet_backbone(name))
    return (
        f"# {name}\n\n"
        f"A small ResNet ({ARCHITECTURES[name]}: (stem width, stride), then (channels, stride) per "
        f"block), {params:,} backbone parameters, {feature_dim(name)}-d features, input "
        f"3x32x32 normalised with mean {GLYPH_MEAN} and std {GLYPH_STD}.\n\n"
        f"- Data: `{SOURCE}` (52 Latin letter classes, {result['train_images']:,} training images, "
        "seed 0); see `python -m tlcourse data info glyphs-latin`.\n"
        f"- Recipe: AdamW, one-cycle lr {result['lr']}, weight decay {result['weight_decay']}, "
        f"batch {result['batch_size']}, epochs {result['epochs']}, label smoothing 0.1, seed "
        f"{result['seed']}; CPU, torch threads {result['threads']}, torch {result['torch']}.\n"
        f"- Source accuracy: {result['test_accuracy']:.1%} on the `{SOURCE}` test split "
        f"(mean training accuracy over the last epoch {result['train_accuracy']:.1%}).\n"
        f"- Build time: {result['build_seconds']:.0f} s (training and evaluation, data already "
        "built; measured on a shared 2-core CPU).\n"
        f"- Rebuild: `python -m tlcourse zoo build {name} --seed {result['seed']}`.\n"
        f"- Shipped: backbone weights only (`{name}.safetensors`); add a fresh head with "
        f"`tlcourse.zoo.load({name!r}, num_classes)`.\n"
        f"- Licence: {LICENCE}.\n"
        "- Intended use: teaching transfer learning; not for real character recognition.\n"
    )


def load_backbone(name: str, path: str | Path | None = None) -> nn.Sequential:
    """Backbone ``name`` with its pretrained weights (shipped file, or ``path``).

    Raises ``FileNotFoundError`` naming the build command when the weights are missing, and
    :class:`~tlcourse.checkpoint.CheckpointMismatchError` naming both architectures when the
    file holds another one.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    from tlcourse.checkpoint import CheckpointMismatchError, check_compatible

    path = Path(path) if path else weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"No weights for {name!r} at {path}. Build them with `python -m tlcourse zoo build {name}`."
        )
    with safe_open(str(path), "pt") as fh:
        found = (fh.metadata() or {}).get("architecture", "unknown")
    backbone = glyphnet_backbone(name)
    state = load_file(str(path))
    source = f"The weights file {path} (architecture {found!r}, expected {name!r})"
    if found != name:
        raise CheckpointMismatchError(
            f"{source} belongs to another backbone. Load it with `zoo.load({found!r}, ...)`, or "
            f"rebuild {name!r} with `python -m tlcourse zoo build {name}`."
        )
    check_compatible({k: list(v.shape) for k, v in state.items()}, backbone, source)
    backbone.load_state_dict(state)
    return backbone


def _entry(name: str) -> ZooEntry:
    return ZooEntry(
        name=name,
        modality="image",
        profile="quick",
        build=functools.partial(glyphnet, name),
        weights=str(weights_path(name)),
        mean=GLYPH_MEAN,
        std=GLYPH_STD,
        input_size=(3, 32, 32),
        licence=LICENCE,
        card=str(card_path(name)),
        load_backbone=functools.partial(load_backbone, name),
        train=functools.partial(train, name),
    )


# The course image backbones, listed in :data:`tlcourse.zoo.FAMILIES`.
ZOO: dict[str, ZooEntry] = {name: _entry(name) for name in ARCHITECTURES}
