"""Reproducibility: seeds, deterministic mode, device choice. Explicit calls only.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a torch Generator seeded alike.

    Pass the returned generator to a ``DataLoader(generator=...)`` to make shuffling repeatable.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def deterministic(enabled: bool = True) -> None:
    """Ask PyTorch for deterministic kernels (slower on GPU; errors on ops that have none)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.benchmark = not enabled
    torch.backends.cudnn.deterministic = enabled


def pick_device(prefer: str | None = None) -> torch.device:
    """Return ``prefer`` if given, else CUDA, else Apple MPS, else CPU.

    ``$TLCOURSE_DEVICE`` overrides the automatic choice (e.g. ``cpu`` to debug on a GPU box).
    """
    choice = prefer or os.environ.get("TLCOURSE_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: give each worker a distinct, repeatable seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
