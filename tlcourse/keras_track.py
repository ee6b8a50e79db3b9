"""Keras 3 glue on the torch backend: the course's torch backbone as a Keras layer.

Chapter 05 runs the chapter-04 task in Keras 3. The pretrained base is the course's own torch
backbone wrapped as a Keras layer (:class:`TorchBackbone`, a ``keras.layers.TorchModuleWrapper``),
so all three frameworks start from the very same weights. Keras then owns the rest: the head,
``trainable``, ``compile``/``fit``, the ``training=False`` call that keeps BatchNorm in inference
mode, ``.keras`` files and export.

Why a subclass rather than the plain ``TorchModuleWrapper``: the plain wrapper stores the whole
``nn.Module`` *pickled* in the ``.keras`` file, which Keras refuses to load unless you turn safe
mode off. :class:`TorchBackbone` stores only the architecture's name in the config (rebuilt from
an allow-list) and the weights as arrays, so ``load_model`` works in safe mode.

Importing this module sets ``KERAS_BACKEND=torch`` before importing keras and raises a clear
error if keras was already imported with another backend.

Introduced in notebooks/05_keras_and_fastai.ipynb.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from tlcourse.atomic import atomic_write
from tlcourse.surgery import BN_TYPES


class KerasBackendError(RuntimeError):
    """Keras is loaded with a backend other than torch; the message says how to fix it."""


def _require_torch_backend() -> None:
    """Select the torch backend, or fail if keras is already running on another one."""
    if "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
        if backend != "torch":
            raise KerasBackendError(
                f"keras is already imported with the {backend!r} backend. Restart the kernel and set "
                "os.environ['KERAS_BACKEND'] = 'torch' before the first `import keras` "
                "(or import tlcourse.keras_track first)."
            )
        return
    os.environ["KERAS_BACKEND"] = "torch"


_require_torch_backend()

import keras  # noqa: E402  (the backend must be chosen first)


def build_architecture(arch: str) -> nn.Module:
    """A backbone ``nn.Module`` with *random* weights for ``arch``: a zoo name or ``"tiny-cnn"``.

    Only names from this allow-list can be rebuilt when a ``.keras`` file is loaded.
    """
    if arch == "tiny-cnn":
        from tlcourse.nets import tiny_cnn

        return tiny_cnn(num_classes=1, width=8).backbone
    from tlcourse import zoo

    try:
        entry = zoo.entry(arch)
    except KeyError as err:
        raise KeyError(
            f"Unknown backbone architecture {arch!r}: use an image zoo name "
            "(python -m tlcourse zoo list) or 'tiny-cnn'."
        ) from err
    return entry.build(1).backbone


def check_architecture(arch: str, module: nn.Module) -> None:
    """Raise ``ValueError`` if ``module``'s weights do not fit architecture ``arch`` (which a reload rebuilds).

    Names outside the allow-list pass unchecked (such a layer trains and exports, but its
    ``.keras`` file cannot be reloaded).
    """
    try:
        reference = build_architecture(arch).state_dict()
    except KeyError:
        return
    found = module.state_dict()
    if {k: tuple(v.shape) for k, v in found.items()} != {
        k: tuple(v.shape) for k, v in reference.items()
    }:
        raise ValueError(
            f"This module is not a {arch!r} backbone (its weights have other names or shapes), so a "
            f"reloaded .keras file would rebuild the wrong network. Pass the architecture's own name "
            f"as arch=, e.g. the zoo name the backbone came from."
        )


class TorchBackbone(keras.layers.TorchModuleWrapper):
    """A course torch backbone as a Keras layer: ``(N, *input_shape) -> (N, feature_dim)``.

    Args:
        arch: architecture name (a zoo image entry such as ``"glyphnet-s"``, or ``"tiny-cnn"``).
        module: the backbone ``nn.Module`` with its weights; default: ``arch`` with random
            weights (what ``load_model`` does before restoring the saved weights).
        input_shape: one input without the batch axis, e.g. ``(3, 32, 32)``.
        inference_bn: keep every BatchNorm layer in inference mode (pretrained running
            statistics, never updated), whatever ``training`` flag Keras passes in; their scale
            and shift still train when the layer is trainable.
    """

    def __init__(
        self,
        arch: str,
        module: nn.Module | None = None,
        input_shape: tuple[int, ...] = (3, 32, 32),
        inference_bn: bool = True,
        **kwargs,
    ) -> None:
        if module is None:
            module = build_architecture(arch)
        else:
            check_architecture(arch, module)
        feature_dim = feature_dim_of(module, tuple(input_shape))
        super().__init__(module, output_shape=(None, feature_dim), **kwargs)
        self.arch, self.feature_dim, self.inference_bn = arch, feature_dim, inference_bn
        self.image_shape = tuple(input_shape)

    def call(self, inputs: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        self.module.train(bool(training))
        if self.inference_bn:
            for layer in self.module.modules():
                if isinstance(layer, BN_TYPES):
                    layer.eval()
        return self.module(inputs)

    def get_config(self) -> dict:
        """Name, input shape and BatchNorm mode: no pickled module (unlike ``TorchModuleWrapper``)."""
        config = keras.layers.Layer.get_config(self)
        return {
            **config,
            "arch": self.arch,
            "input_shape": list(self.image_shape),
            "inference_bn": self.inference_bn,
        }

    @classmethod
    def from_config(cls, config: dict) -> TorchBackbone:
        return cls(**config)


@torch.no_grad()
def feature_dim_of(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Width of the features ``module`` gives for one input of ``input_shape`` (one forward pass)."""
    was_training = module.training
    features = module.eval()(torch.zeros(1, *input_shape, device=next(module.parameters()).device))
    module.train(was_training)
    if features.dim() != 2:
        raise ValueError(
            f"The backbone must return (N, feature_dim); it returned {tuple(features.shape)}."
        )
    return int(features.shape[1])


def classifier(
    base: keras.layers.Layer,
    num_classes: int,
    input_shape: tuple[int, ...] = (3, 32, 32),
    dropout: float = 0.0,
) -> keras.Model:
    """Functional model ``inputs -> base(training=False) -> [Dropout] -> Dense(num_classes)`` (logits).

    The base is *called* with ``training=False``, the Keras idiom for keeping BatchNorm in
    inference mode. On Keras 3.15 ``fit`` overrides that flag inside a functional model, which is
    why :class:`TorchBackbone` pins its BatchNorm layers itself (``inference_bn=True``).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = base(inputs, training=False)
    if dropout:
        x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=f"{getattr(base, 'arch', base.name)}_classifier")


def compile_classifier(model: keras.Model, lr: float) -> keras.Model:
    """``compile`` with Adam(``lr``), cross-entropy on logits and accuracy; returns ``model``.

    Call it again after changing any ``trainable`` flag: ``fit`` uses the set of trainable
    weights fixed at compile time.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def count_trainable(model: keras.Model) -> int:
    """Number of trainable weight elements (what the optimizer updates)."""
    return sum(math.prod(w.shape) for w in model.trainable_weights)


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a ``.keras`` file that holds a :class:`TorchBackbone`, in Keras's safe mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"No Keras model at {path}; save one with model.save('{path.name}')."
        )
    return keras.saving.load_model(path, custom_objects={"TorchBackbone": TorchBackbone})


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to ``path`` (``.keras``) atomically: a temp file in the same folder, then rename."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"Keras 3 saves whole models as .keras files; got {path.name!r}.")
    return atomic_write(path, model.save, suffix=".keras")


def export_for_serving(model: keras.Model, path: str | os.PathLike, batch: int = 1) -> Path:
    """Export the inference graph with ``model.export(path, format="torch")`` (a ``.pt2`` file).

    On the torch backend Keras exports ``torch.export`` programs (``"torch"``) and ONNX; the
    TensorFlow SavedModel format needs TensorFlow. The program takes exactly ``batch`` images
    ``(batch, *input_shape)``; load it with :func:`load_exported`.
    """
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"format='torch' writes a .pt2 file; got {path.name!r}.")
    shape = (batch, *model.input_shape[1:])
    spec = keras.InputSpec(shape=shape, dtype="float32")
    model.export(str(path), format="torch", input_signature=[spec], verbose=False)
    return path


def load_exported(path: str | os.PathLike) -> Callable[[torch.Tensor], torch.Tensor]:
    """The exported inference function: ``f(images (N, 3, H, W)) -> logits (N, num_classes)``."""
    program = torch.export.load(str(path))
    return program.module()
