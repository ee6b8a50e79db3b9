"""Adversarial examples: FGSM and PGD in [0, 1] pixel space, with the normalisation inside the model.

An attack perturbs the image a person sees, so it works on pixels in ``[0, 1]``; the backbone's
normalisation (mean / std) belongs inside the attacked model (:class:`Normalized`), otherwise
``eps`` would be measured in a different unit for every backbone. Every attack returns images
clipped to ``[0, 1]`` and to the L-infinity ball of radius ``eps`` around the clean images.

Introduced in notebooks/12_regularisation_and_robustness.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

Attack = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class Normalized(nn.Module):
    """``model((x - mean) / std)``: a model that takes images in ``[0, 1]``, shape ``(N, C, H, W)``.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels, std {len(std)}: give one per channel")
        if min(std) <= 0:
            raise ValueError(f"std must be positive, got {list(std)}")
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std)


def _check_pixels(images: torch.Tensor, eps: float) -> None:
    if not images.is_floating_point():
        raise TypeError(
            f"images are {images.dtype}: attacks work on float pixels in [0, 1]; convert with "
            "transforms.v2.ToDtype(torch.float32, scale=True)"
        )
    if images.min() < 0 or images.max() > 1:
        raise ValueError(
            f"images range over [{images.min():.3g}, {images.max():.3g}], not [0, 1]: attack the "
            "raw pixels and put the normalisation inside the model (adversarial.Normalized)"
        )
    if not 0 <= eps <= 1:
        raise ValueError(f"eps={eps} is in pixel units of [0, 1]: use for instance 8/255")


def _input_gradient(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """d loss / d images, without touching the gradients stored on the model's parameters."""
    images = images.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(images), labels)
        (grad,) = torch.autograd.grad(loss, images)
    return grad


def _project(adv: torch.Tensor, clean: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip into the eps-ball around ``clean`` and into ``[0, 1]``."""
    return torch.max(torch.min(adv, clean + eps), clean - eps).clamp(0, 1)


def fgsm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps``.

    ``images`` ``(N, C, H, W)`` in ``[0, 1]``, ``labels`` ``(N,)`` int64 -> adversarial images, same
    shape. The model is used as it is (put it in eval mode first).

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    _check_pixels(images, eps)
    grad = _input_gradient(model, images, labels)
    return _project(images + eps * grad.sign(), images, eps).detach()


def pgd(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    step: float,
    steps: int,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2018): ``steps`` signed steps of size ``step``.

    Each step is projected back into the eps-ball and ``[0, 1]``; with ``random_start`` the
    attack begins at a uniform point of the ball. Shapes as :func:`fgsm`.

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    _check_pixels(images, eps)
    if steps < 1 or step <= 0:
        raise ValueError(f"steps={steps}, step={step}: use at least one step of positive size")
    adv = images.clone()
    if random_start:
        noise = torch.rand(images.shape, generator=generator, dtype=images.dtype) * 2 - 1
        adv = _project(images + eps * noise.to(images.device), images, eps)
    for _ in range(steps):
        grad = _input_gradient(model, adv, labels)
        adv = _project(adv + step * grad.sign(), images, eps)
    return adv.detach()


def robust_accuracy(
    model: nn.Module, loader: Iterable, attack: Attack | None = None, **attack_kwargs
) -> float:
    """Accuracy on ``attack(model, x, y, **attack_kwargs)`` for every batch (clean when None).

    Introduced in notebooks/12_regularisation_and_robustness.ipynb.
    """
    model.eval()
    correct = total = 0
    for images, labels in loader:
        inputs = images if attack is None else attack(model, images, labels, **attack_kwargs)
        with torch.no_grad():
            correct += (model(inputs).argmax(1) == labels).sum().item()
        total += len(labels)
    if total == 0:
        raise ValueError("the loader is empty: nothing to measure")
    return correct / total
