"""Keras 3 glue (torch backend): frozen base, BatchNorm in inference mode, .keras round trip, export."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras_track = pytest.importorskip("tlcourse.keras_track")
keras = keras_track.keras

from tests import helpers  # noqa: E402
from tlcourse.nets import tiny_cnn  # noqa: E402


def _backbone(seed: int = 0) -> torch.nn.Module:
    """The "tiny-cnn" architecture of keras_track's allow-list (tiny_cnn at width 8)."""
    torch.manual_seed(seed)
    return tiny_cnn(3, width=8).backbone


def _model(num_classes: int = 3, seed: int = 0):
    backbone = _backbone(seed)
    base = keras_track.TorchBackbone("tiny-cnn", backbone, input_shape=(3, 8, 8), name="base")
    return backbone, base, keras_track.classifier(base, num_classes, input_shape=(3, 8, 8))


def _stats(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _data(n: int = 32, num_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    x, y = helpers.blobs(n, num_classes).tensors
    return (x * 2 + 1).numpy(), y.numpy()


def test_frozen_base_trains_only_the_head_and_keeps_statistics():
    backbone, base, model = _model()
    base.trainable = False
    keras_track.compile_classifier(model, lr=1e-2)
    assert keras_track.count_trainable(model) == base.feature_dim * 3 + 3
    before = _stats(backbone)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())


def test_unfrozen_base_trains_weights_but_batchnorm_stays_in_inference_mode():
    backbone, base, model = _model()
    base.trainable = True
    keras_track.compile_classifier(model, lr=1e-2)
    assert (
        keras_track.count_trainable(model)
        == sum(p.numel() for p in backbone.parameters()) + base.feature_dim * 3 + 3
    )
    before = _stats(backbone)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    now = backbone.state_dict()
    assert all(
        torch.equal(v, now[k]) for k, v in before.items() if "running" in k or "num_batches" in k
    )
    assert not torch.equal(before["stem.0.weight"], now["stem.0.weight"])


def test_without_inference_bn_the_statistics_move():
    """The trap the chapter shows: fit's training=True reaches the wrapped torch module."""
    backbone = _backbone()
    base = keras_track.TorchBackbone(
        "tiny-cnn", backbone, input_shape=(3, 8, 8), inference_bn=False
    )
    model = keras_track.classifier(base, 3, input_shape=(3, 8, 8))
    keras_track.compile_classifier(model, lr=1e-2)
    before = _stats(backbone)
    model.fit(*_data(), batch_size=8, epochs=1, verbose=0)
    assert not torch.equal(
        before["stem.1.running_mean"], backbone.state_dict()["stem.1.running_mean"]
    )


def test_keras_file_round_trip_in_safe_mode_and_continue(tmp_path):
    backbone, base, model = _model()
    base.trainable = False
    keras_track.compile_classifier(model, lr=1e-2)
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = keras_track.save_model(model, tmp_path / "m.keras")
    assert path.is_file() and not list(tmp_path.glob(".*tmp*"))
    reloaded = keras_track.load_model(path)  # safe mode: no pickled module inside
    np.testing.assert_allclose(
        model.predict(x, verbose=0), reloaded.predict(x, verbose=0), atol=1e-6
    )
    assert reloaded.get_layer("base").trainable is False
    assert keras_track.count_trainable(reloaded) == keras_track.count_trainable(model)
    assert int(reloaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) > 0
    history = reloaded.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])


def test_stock_wrapper_file_needs_unsafe_mode(tmp_path):
    """Why TorchBackbone exists: the stock wrapper pickles the module into the .keras file."""
    torch.manual_seed(0)
    stock = keras.layers.TorchModuleWrapper(_backbone(), output_shape=(None, 32))
    inputs = keras.Input(shape=(3, 8, 8))
    model = keras.Model(inputs, keras.layers.Dense(3)(stock(inputs)))
    model.save(tmp_path / "stock.keras")
    with pytest.raises(ValueError, match="safe_mode"):
        keras.saving.load_model(tmp_path / "stock.keras")


def test_export_for_serving_matches(tmp_path):
    _, _, model = _model()
    x, _ = _data(4)
    path = keras_track.export_for_serving(model, tmp_path / "m.pt2", batch=4)
    serve = keras_track.load_exported(path)
    with torch.no_grad():
        got = serve(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, model.predict(x, verbose=0), atol=1e-5)


def test_bad_paths_and_names_get_clear_errors(tmp_path):
    _, _, model = _model()
    with pytest.raises(ValueError, match=".keras"):
        keras_track.save_model(model, tmp_path / "m.h5")
    with pytest.raises(FileNotFoundError, match="model.save"):
        keras_track.load_model(tmp_path / "missing.keras")
    with pytest.raises(ValueError, match=".pt2"):
        keras_track.export_for_serving(model, tmp_path / "m.onnx")
    with pytest.raises(KeyError, match="zoo list"):
        keras_track.build_architecture("no-such-net")
    with pytest.raises(ValueError, match="arch="):
        keras_track.TorchBackbone("tiny-cnn", tiny_cnn(3, width=4).backbone, input_shape=(3, 8, 8))


def test_other_backend_already_loaded_fails_clearly():
    code = (
        "import sys, types\n"
        "fake = types.ModuleType('keras'); fake.backend = types.SimpleNamespace(backend=lambda: 'jax')\n"
        "sys.modules['keras'] = fake\n"
        "try:\n    import tlcourse.keras_track\nexcept RuntimeError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "ERR" in out.stdout and "KERAS_BACKEND" in out.stdout
