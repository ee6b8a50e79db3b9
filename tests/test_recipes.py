import torch

from tlcourse import recipes, surgery

from helpers import loader, model


def test_extract_features_shapes_and_mode():
    m = model().train()
    feats, targets = recipes.extract_features(m.backbone, loader(n=40, shuffle=False))
    assert feats.shape == (40, 16) and targets.shape == (40,)
    assert m.backbone.training  # restored


def test_linear_probe_trains_only_the_head():
    m = model()
    before = {k: v.clone() for k, v in m.backbone.state_dict().items()}
    history = recipes.linear_probe(
        m, loader(), epochs=20, lr=5e-2, val_loader=loader(seed=1, shuffle=False)
    )
    assert all(torch.equal(before[k], v) for k, v in m.backbone.state_dict().items())
    assert history.series("stage") == ["linear probe"] * 20
    assert history.last("val_accuracy") > 0.5  # random features, 3 classes: chance is 0.33
    assert surgery.count_parameters(m, trainable=True) == surgery.count_parameters(m.head)


def test_fine_tune_runs_both_stages_and_learns():
    m = model()
    history = recipes.fine_tune(
        m, loader(n=256), epochs=4, lr=1e-1, head_epochs=1, val_loader=loader(seed=1, shuffle=False)
    )
    assert history.series("stage") == ["head"] + ["all layers"] * 4
    assert history.series("epoch") == [1, 2, 3, 4, 5]
    assert history.last("val_loss") < 0.6 * history.series("val_loss")[0]
    assert history.last("val_accuracy") > 0.6
    assert surgery.count_parameters(m, trainable=False) == 0


def test_gradual_unfreeze_opens_one_block_per_stage():
    m = model()
    history = recipes.gradual_unfreeze(m, loader(), epochs_per_stage=1, lr=1e-2, max_blocks=2)
    assert history.series("stage") == ["head", "+block2", "+block1"]
    assert not any(p.requires_grad for p in m.backbone.stem.parameters())
    assert all(p.requires_grad for p in m.backbone.block1.parameters())


def test_logistic_probe_on_separable_features():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 2
    x = torch.randn(200, 5, generator=g) + 3 * y[:, None]
    assert recipes.logistic_probe((x[:100], y[:100]), (x[100:], y[100:])) > 0.95
