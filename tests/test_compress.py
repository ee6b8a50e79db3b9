"""Unit tests of tlcourse.compress and tlcourse.quantize on tiny models (CPU, no network)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from torch import nn

from tlcourse import compress, quantize, zoo
from tlcourse.nets import tiny_cnn
from tlcourse.surgery import count_parameters


def _random_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def glyphnet_m():
    torch.manual_seed(0)
    return zoo.load("glyphnet-m", num_classes=24, pretrained=False).eval()


def test_prune_channels_halves_glyphnet_m_and_keeps_the_output_shape(glyphnet_m):
    x = torch.randn(4, 3, 32, 32)
    pruned = compress.prune_channels(glyphnet_m, 0.5, x[:2])
    assert count_parameters(pruned) <= count_parameters(glyphnet_m) / 2
    assert pruned(x).shape == glyphnet_m(x).shape == (4, 24)
    assert pruned.head.out_features == 24  # the head keeps its classes
    assert count_parameters(glyphnet_m) == 1_214_008  # the original is untouched


def test_prune_channels_refuses_a_ratio_outside_0_1(glyphnet_m):
    with pytest.raises(ValueError, match="fraction of channels"):
        compress.prune_channels(glyphnet_m, 1.0, torch.randn(2, 3, 32, 32))


def test_save_and_load_pruned_round_trip(glyphnet_m, tmp_path):
    x = torch.randn(3, 3, 32, 32)
    pruned = compress.prune_channels(glyphnet_m, 0.4, x[:2])
    path = compress.save_pruned(pruned, tmp_path / "pruned.safetensors")
    with safe_open(str(path), "pt") as fh:
        widths = json.loads(fh.metadata()["widths"])
    assert widths["backbone.stem.0"]["out_channels"] < 32  # the architecture is data
    fresh = zoo.load("glyphnet-m", num_classes=24, pretrained=False)
    loaded = compress.load_pruned(path, fresh)
    assert count_parameters(loaded) == count_parameters(pruned)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), pruned(x))
    assert not loaded.training


def test_load_pruned_names_the_fix_for_another_architecture(glyphnet_m, tmp_path):
    pruned = compress.prune_channels(glyphnet_m, 0.5, torch.randn(2, 3, 32, 32))
    path = compress.save_pruned(pruned, tmp_path / "p.safetensors")
    with pytest.raises(ValueError, match="unpruned model"):
        compress.load_pruned(path, tiny_cnn(24))


def test_slicing_by_hand_equals_masking_the_same_channels():
    model = _random_bn_stats(tiny_cnn(num_classes=5, width=8))
    conv, bn = model.backbone.stem[0], model.backbone.stem[1]
    nxt = model.backbone.block1[0]
    keep = torch.tensor([0, 2, 3, 7])
    new_conv, new_bn, new_next = compress.prune_conv_pair(conv, bn, nxt, keep)
    assert not new_bn.training  # takes the original's eval mode
    assert (new_conv.out_channels, new_bn.num_features, new_next.in_channels) == (4, 4, 4)
    x = torch.randn(2, 3, 16, 16)
    masked = nxt.weight.clone()
    masked[:, [i for i in range(8) if i not in keep.tolist()]] = 0
    with torch.no_grad():
        reference = nn.functional.conv2d(
            model.backbone.stem(x), masked, stride=nxt.stride, padding=nxt.padding
        )
        sliced = new_next(torch.relu(new_bn(new_conv(x))))
    torch.testing.assert_close(sliced, reference, rtol=1e-5, atol=1e-5)


def test_magnitude_pruning_zeros_weights_but_keeps_the_file_size():
    model = tiny_cnn(num_classes=5, width=8)
    x = torch.randn(2, 3, 16, 16)
    pruned = compress.magnitude_prune(model, 0.8)
    assert compress.sparsity(model) < 0.01
    assert 0.79 <= compress.sparsity(pruned) <= 0.81
    dense = compress.measure(model, x, batch_sizes=(1,), repeats=1, compressed=True)
    sparse = compress.measure(pruned, x, batch_sizes=(1,), repeats=1, compressed=True)
    assert sparse["size_mb"] == dense["size_mb"]
    assert sparse["zlib_mb"] < 0.6 * dense["zlib_mb"]


def test_measure_reports_every_field_and_restores_threads_and_mode():
    model = tiny_cnn(num_classes=3, width=4).train()
    x = torch.randn(5, 3, 8, 8)
    loader = [(x, torch.tensor([0, 1, 2, 0, 1]))]
    threads = torch.get_num_threads()
    row = compress.measure(model, x, loader=loader, batch_sizes=(1, 7), repeats=2, threads=1)
    assert set(row) == {"size_mb", "ms_b1", "ms_b7", "accuracy", "threads"}
    assert row["threads"] == 1 and torch.get_num_threads() == threads
    assert row["ms_b1"] > 0 and row["ms_b7"] > 0 and 0 <= row["accuracy"] <= 1
    assert row["size_mb"] * 1e6 > 4 * count_parameters(model)  # float32 weights and more
    assert model.training
    with pytest.raises(ValueError, match="n >= 1"):
        compress.measure(model, x[:0])


def _calibration(n: int = 4, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 3, 16, 16, generator=gen) for _ in range(n)]


@pytest.mark.slow
def test_int8_weights_are_3_5x_smaller_and_outputs_close():
    torch.manual_seed(0)
    model = _random_bn_stats(tiny_cnn(num_classes=10, width=16))
    int8 = quantize.quantize_int8(model, _calibration(), compile=False)
    fp32_mb = compress.measure(model, _calibration(1)[0], batch_sizes=())["size_mb"]
    int8_mb = compress.measure(int8, _calibration(1)[0], batch_sizes=())["size_mb"]
    state = compress.weights_state(int8)
    assert any(t.dtype == torch.int8 for t in state.values())
    assert fp32_mb / int8_mb >= 3.5, (fp32_mb, int8_mb)
    x = _calibration(1, seed=1)[0]
    with torch.no_grad():
        ref, got = model(x), int8(x)
    assert (got - ref).abs().max() < 0.1 * ref.abs().max()
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() >= 0.9


def test_int8_linear_layers_with_torchao():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    int8 = quantize.quantize_linear_int8(model)
    x = torch.randn(8, 64)
    with torch.no_grad():
        torch.testing.assert_close(int8(x), model(x), rtol=0.05, atol=0.05)
    state = compress.weights_state(int8)
    assert any(t.dtype == torch.int8 for t in state.values())
    fp32, small = (compress.measure(m, x, batch_sizes=())["size_mb"] for m in (model, int8))
    assert fp32 / small >= 3.0  # biases and scales stay float


def test_quantize_int8_needs_a_calibration_batch():
    with pytest.raises(ValueError, match="calibration batch"):
        quantize.quantize_int8(tiny_cnn(3), [])
