"""Engine overhead: tlcourse ``fit`` against a hand-written PyTorch loop, same model and data.

Run: ``.venv/bin/python scripts/bench_engine.py`` (not a timed test: timings are noisy on a
shared CI machine). Prints both times and the overhead in percent; the goal is <= 5 %.
"""

from __future__ import annotations

import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.engine import fit
from tlcourse.nets import tiny_cnn
from tlcourse.repro import seed_everything


def data(n: int = 4096) -> DataLoader:
    g = seed_everything(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=g)


def plain_loop(model: nn.Module, loader: DataLoader, epochs: int) -> None:
    """The loop every PyTorch tutorial writes."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def timed(run) -> float:
    seed_everything(0)
    model, loader = tiny_cnn(10, width=16), data()
    start = time.perf_counter()
    run(model, loader)
    return time.perf_counter() - start


def main(epochs: int = 2, repeats: int = 5) -> None:
    runs = {
        "plain": lambda m, dl: plain_loop(m, dl, epochs),
        "engine": lambda m, dl: fit(m, dl, epochs=epochs, lr=1e-3, device="cpu", progress=False),
    }
    timed(runs["plain"])  # warm-up: first-call allocations and kernel selection
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):  # alternate, so background load hits both alike
        for name, run in runs.items():
            best[name] = min(best[name], timed(run))
    plain, engine = best["plain"], best["engine"]
    print(
        f"plain PyTorch loop : {plain:6.2f} s (best of {repeats}, {epochs} epochs of 4096 images 32x32)"
    )
    print(f"tlcourse fit       : {engine:6.2f} s")
    print(f"overhead           : {100 * (engine / plain - 1):+.1f} %")


if __name__ == "__main__":
    main()
