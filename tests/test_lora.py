"""tlcourse.lora and tlcourse.adapters on tiny models: LoRA against peft, merging, injection,
BitFit, bottleneck adapters and the per-task cost measures."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from torch import nn

from tlcourse import adapters, lora
from tlcourse.surgery import count_parameters


class Block(nn.Module):
    def __init__(self, dim: int = 12) -> None:
        super().__init__()
        self.query, self.value, self.dense = (
            nn.Linear(dim, dim),
            nn.Linear(dim, dim),
            nn.Linear(dim, 2 * dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(torch.tanh(self.query(x)) * self.value(x))


class TinyNet(nn.Module):
    """Two blocks and a head; linear layers named like a transformer's (query, value, dense)."""

    def __init__(self, dim: int = 12, num_classes: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(dim), nn.Sequential(nn.Linear(2 * dim, dim))])
        self.inner = Block(dim)
        self.head = nn.Linear(2 * dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks[1](self.blocks[0](x))
        return self.head(self.inner(h).mean(1))


def tiny() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def x_batch(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 5, 12, generator=torch.Generator().manual_seed(1))


def test_lora_linear_matches_peft_given_the_same_a_and_b():
    base = tiny()
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False
    )
    theirs = get_peft_model(copy.deepcopy(base), config)
    ours = lora.inject(copy.deepcopy(base), ["query", "value"], r=4, alpha=8)
    inner = theirs.base_model.model
    pairs = [
        (m, inner.get_submodule(n))
        for n, m in ours.named_modules()
        if isinstance(m, lora.LoRALinear)
    ]
    assert len(pairs) == 4
    with torch.no_grad():
        for mine, twin in pairs:
            mine.A.copy_(twin.lora_A["default"].weight)
            mine.B.copy_(twin.lora_B["default"].weight)
        x = x_batch()
        got, expected, plain = ours(x), theirs(x), base(x)
    assert torch.allclose(got, expected, atol=1e-5)
    assert (got - plain).abs().max() > 1e-3  # the update is really active (B is not zero)
    assert count_parameters(ours, trainable=True) == count_parameters(theirs, trainable=True)


def test_lora_linear_formula_shapes_and_start():
    base = nn.Linear(6, 4)
    layer = lora.LoRALinear(base, r=2, alpha=6)
    assert layer.A.shape == (2, 6) and layer.B.shape == (4, 2)
    assert not base.weight.requires_grad and not base.bias.requires_grad
    assert layer.A.requires_grad and layer.B.requires_grad and (layer.B == 0).all()
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), base(x))  # B = 0: the pretrained layer at the start
    with torch.no_grad():
        layer.B.normal_()
    expected = x @ base.weight.T + base.bias + 3.0 * x @ layer.A.T @ layer.B.T
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_base_stays_frozen_while_lora_trains():
    model = lora.inject(tiny(), ["query", "value"], r=2, alpha=4)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(
        n.endswith((".A", ".B")) for n, p in model.named_parameters() if p.requires_grad
    )
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    for _ in range(3):
        loss = model(x_batch()).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)
    assert any((m.B != 0).any() for m in model.modules() if isinstance(m, lora.LoRALinear))


def test_merge_keeps_outputs_and_gives_a_plain_linear():
    layer = lora.LoRALinear(nn.Linear(7, 5), r=3, alpha=5)
    with torch.no_grad():
        layer.B.normal_()
    merged = lora.merge(layer)
    x = torch.randn(4, 7)
    assert type(merged) is nn.Linear and not merged.weight.requires_grad
    assert torch.allclose(merged(x), layer(x), atol=1e-5)
    no_bias = lora.LoRALinear(nn.Linear(7, 5, bias=False), r=2)
    assert lora.merge(no_bias).bias is None


def test_merge_all_restores_the_architecture_with_the_same_outputs():
    model = lora.inject(tiny(), ["query", "dense"], r=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, lora.LoRALinear):
                m.B.normal_(std=0.1)
        x = x_batch()
        before = model(x)
        merged = lora.merge_all(copy.deepcopy(model))
        assert torch.allclose(merged(x), before, atol=1e-5)
    assert not any(isinstance(m, lora.LoRALinear) for m in merged.modules())
    assert [type(m) for m in merged.modules()] == [type(m) for m in tiny().modules()]


def test_inject_targets_only_the_named_layers():
    model = lora.inject(tiny(), ["query", "value"], r=2)
    wrapped = sorted(n for n, m in model.named_modules() if isinstance(m, lora.LoRALinear))
    assert wrapped == ["blocks.0.query", "blocks.0.value", "inner.query", "inner.value"]
    assert isinstance(model.blocks[0].dense, nn.Linear) and isinstance(model.head, nn.Linear)
    assert count_parameters(model, trainable=True) == 4 * 2 * (12 + 12)
    # a dotted suffix picks one layer; a non-matching name is a clear error
    one = lora.inject(tiny(), ["inner.dense"], r=1, freeze_rest=False)
    assert [n for n, m in one.named_modules() if isinstance(m, lora.LoRALinear)] == ["inner.dense"]
    assert one.head.weight.requires_grad
    with pytest.raises(ValueError, match="linear layers"):
        lora.inject(tiny(), ["key"], r=2)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="nn.Linear"):
        lora.LoRALinear(nn.Conv1d(2, 2, 1), r=2)
    with pytest.raises(ValueError, match="positive integer"):
        lora.LoRALinear(nn.Linear(2, 2), r=0)
    with pytest.raises(TypeError, match="LoRALinear"):
        lora.merge(nn.Linear(2, 2))
    model = lora.inject(tiny(), ["query"], r=2)
    with pytest.raises(KeyError, match="inject"):
        lora.load_lora_state_dict(model, {"inner.value.A": torch.zeros(2, 12)})


def test_lora_state_dict_round_trip_switches_tasks():
    model = lora.inject(tiny(), ["query", "value"], r=2)
    x = x_batch()
    with torch.no_grad():
        start = lora.lora_state_dict(model)
        for m in model.modules():
            if isinstance(m, lora.LoRALinear):
                m.B.normal_()
        task = lora.lora_state_dict(model)
        tuned = model(x)
        lora.load_lora_state_dict(model, start)
        assert not torch.allclose(model(x), tuned)
        lora.load_lora_state_dict(model, task)
        assert torch.equal(model(x), tuned)
    assert set(task) == {
        f"{n}.{p}"
        for n in ("blocks.0.query", "blocks.0.value", "inner.query", "inner.value")
        for p in "AB"
    }


def test_bitfit_trains_biases_and_the_head_only():
    model = adapters.bitfit(tiny())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        n for n, _ in model.named_parameters() if n.endswith("bias") or n.startswith("head.")
    }
    assert "head.weight" in trainable and "inner.query.weight" not in trainable


def test_adapter_starts_as_identity_and_trains_alone():
    adapter = adapters.BottleneckAdapter(8, bottleneck=3)
    h = torch.randn(2, 4, 8)
    assert torch.equal(adapter(h), h)
    model = tiny()
    x = x_batch()
    before = model(x)
    model = adapters.add_adapters(model, "dense", bottleneck=4)
    assert torch.allclose(model(x), before, atol=1e-6)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all(".adapter." in n for n in names)
    assert count_parameters(model, trainable=True) == 2 * (24 * 4 + 4 + 4 * 24 + 24)


def test_task_bytes_count_only_the_trainable_tensors():
    full = tiny().requires_grad_(True)
    small = lora.inject(tiny(), ["query"], r=1)
    assert adapters.task_bytes(full) > 4 * count_parameters(full)
    assert (
        4 * count_parameters(small, trainable=True)
        < adapters.task_bytes(small)
        < adapters.task_bytes(full) / 4
    )


def test_training_memory_falls_when_less_trains():
    x, y = x_batch(8), torch.arange(8) % 3
    full = adapters.training_memory(tiny().requires_grad_(True), x, y)
    head_only = tiny().requires_grad_(False)
    head_only.head.requires_grad_(True)
    head = adapters.training_memory(head_only, x, y)
    assert (
        full["gradients"] == 4 * count_parameters(tiny())
        and full["adam_state"] == 2 * full["gradients"]
    )
    assert (
        full["activations"] > head["activations"] > 0
    )  # the frozen body keeps nothing for backward
    assert full["total"] == full["gradients"] + full["adam_state"] + full["activations"]
