import pytest
import torch

from tlcourse import surgery

from helpers import model


def test_replace_head_changes_output_size():
    m = surgery.replace_head(model(num_classes=3), 7)
    assert m(torch.zeros(2, 3, 8, 8)).shape == (2, 7)
    with pytest.raises(ValueError):
        surgery.replace_head(m, 0)


def test_replace_head_needs_a_head():
    with pytest.raises(AttributeError, match="attr="):
        surgery.replace_head(torch.nn.Sequential(torch.nn.Linear(2, 2)), 3)


def test_freeze_and_unfreeze_by_name_and_glob():
    m = surgery.freeze(model(), "backbone")
    assert surgery.count_parameters(m, trainable=True) == surgery.count_parameters(m.head)
    surgery.unfreeze(m, "backbone.block2.*")
    assert all(p.requires_grad for p in m.backbone.block2.parameters())
    assert not any(p.requires_grad for p in m.backbone.stem.parameters())
    with pytest.raises(KeyError, match="No parameter name matches"):
        surgery.freeze(m, "decoder")


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_freeze_blocks_by_depth(k):
    m = surgery.freeze_blocks(model(), k)
    names = [n for n, _ in surgery.blocks(m)]
    assert names == ["stem", "block1", "block2"]
    for i, (_, block) in enumerate(surgery.blocks(m)):
        assert all(p.requires_grad == (i >= k) for p in block.parameters())
    assert all(p.requires_grad for p in m.head.parameters())
    with pytest.raises(ValueError, match="out of range"):
        surgery.freeze_blocks(m, 4)


def test_set_bn_eval_only_touches_frozen_batchnorm():
    m = surgery.freeze_blocks(model(), 1).train()
    surgery.set_bn_eval(m)
    assert not m.backbone.stem[1].training and m.backbone.block1[1].training


def test_param_groups_and_discriminative_lrs():
    m = model()
    groups = surgery.param_groups(m, {"backbone": 1e-4, "head": 1e-2})
    assert [g["lr"] for g in groups] == [1e-4, 1e-2]
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    with pytest.raises(ValueError, match="default_lr"):
        surgery.param_groups(m, {"head": 1e-2})
    disc = {g["name"]: g["lr"] for g in surgery.discriminative_groups(m, lr=1e-2, factor=0.5)}
    assert (
        disc["head"] == 1e-2
        and disc["backbone.block2"] == 5e-3
        and disc["backbone.stem"] == 1.25e-3
    )
    torch.optim.AdamW(surgery.discriminative_groups(m, 1e-2))  # a valid optimizer spec


def test_trainable_summary_table():
    m = surgery.freeze(model(), "backbone")
    table = surgery.trainable_summary(m)
    assert list(table.index) == [
        "backbone.stem",
        "backbone.block1",
        "backbone.block2",
        "head",
        "total",
    ]
    assert table.loc["total", "parameters"] == surgery.count_parameters(m)
    assert table.loc["head", "trainable"] == table.loc["total", "trainable"] > 0
    assert table.loc["backbone.stem", "trainable"] == 0
