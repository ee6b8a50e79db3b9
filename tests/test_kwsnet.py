"""The kwsnet family: architecture, shipped weights, zoo entry and card."""

import pytest
import torch

from tlcourse.checkpoint import CheckpointMismatchError
from tlcourse.models import kwsnet


def test_kwsnet_shapes_and_blocks():
    model = kwsnet.kwsnet(num_classes=7)
    names = [n for n, _ in model.backbone.named_children()]
    assert names == ["stem", "block1", "block2", "block3", "block4", "pool"]
    x = torch.randn(3, 1, 40, 101)
    assert model.backbone(x).shape == (3, 128)
    assert model(x).shape == (3, 7)


def test_shipped_backbone_loads_and_rejects_other_architectures(tmp_path):
    from safetensors.torch import save_file

    backbone = kwsnet.load_backbone()
    assert backbone(torch.randn(2, 1, 40, 101)).shape == (2, 128)
    other = kwsnet.kwsnet(num_classes=3, width=16).state_dict()
    save_file({k: v.contiguous() for k, v in other.items()}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="different architecture"):
        kwsnet.load_backbone(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError, match="zoo build kwsnet"):
        kwsnet.load_backbone(tmp_path / "missing.safetensors")


def test_zoo_entry_and_card():
    entry = kwsnet.ZOO["kwsnet"]
    assert (
        entry.modality == "audio" and entry.input_size == (1, 40, 101) and entry.train is not None
    )
    assert entry.build(5)(torch.randn(1, 1, 40, 101)).shape == (1, 5)
    for word in ("Data", "Recipe", "Source accuracy", "Build", "Licence", "parameters"):
        assert word in entry.card
    from tlcourse.paths import assets_dir

    weights = assets_dir() / "zoo" / kwsnet.KWSNET_FILE
    assert weights.stat().st_size <= 10 * 2**20
