"""Two processes, one gradient: the mean of the ranks' gradients is the big-batch gradient.

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m tlcourse.allreduce_demo --out DIR

Every rank builds the same linear model and sees the same global batch of 8 examples; rank ``r``
keeps rows ``r, r + N, ...`` (its shard), computes the gradient of the mean loss on them, and
``all_reduce`` sums those gradients over ranks; divided by N that is the gradient of the mean loss
over all 8 rows. Then it times ``all_reduce`` on growing tensors (the communication that data
parallelism adds to every step). Rank 0 writes ``DIR/allreduce.json``.

With ``--average FILE`` it instead tests a hand-written ``average_gradients(model, all_reduce,
world_size)`` from ``FILE`` (the exercise of chapter 11): every rank backpropagates its shard, calls
it with ``torch.distributed.all_reduce``, and rank 0 records how far the result is from the
big-batch gradient (``DIR/average.json``). The function comes from a file because every process
must import the code it runs.

Introduced in notebooks/11_distributed_training.ipynb.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from tlcourse import distributed as D


def gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The gradient of the mean squared error on ``(x, y)``, flattened: ``(num_params,)``."""
    model.zero_grad()
    nn.functional.mse_loss(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def time_all_reduce(numel: int, repeats: int = 5) -> float:
    """Median seconds of one ``all_reduce`` of ``numel`` float32 values (all ranks call it)."""
    t = torch.ones(numel)
    times = []
    for _ in range(repeats):
        dist.barrier()
        tic = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - tic)
    return sorted(times)[len(times) // 2]


def load_function(path: Path, name: str = "average_gradients"):
    """The function ``name`` defined in the Python file ``path``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_learner_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, name, None)):
        raise SystemExit(f"error: {path} defines no function {name}(...)")
    return getattr(module, name)


def check_average(path: Path, env: D.DistEnv) -> dict:
    """Run ``average_gradients`` from ``path`` on this rank's shard; compare with the big batch."""
    average = load_function(path)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1))
    x, y = torch.randn(12, 5), torch.randn(12, 1)
    big = gradient(model, x, y)
    gradient(model, x[env.rank :: env.world_size], y[env.rank :: env.world_size])
    average(model, dist.all_reduce, env.world_size)
    mine = torch.cat([p.grad.flatten() for p in model.parameters()])
    return {"world_size": env.world_size, "max_difference": float((mine - big).abs().max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchrun ... -m tlcourse.allreduce_demo")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--average", type=Path, help="a .py file defining average_gradients")
    args = parser.parse_args(argv)
    env = D.init(D.read_env())
    if not dist.is_initialized():
        parser.error(
            "start it with torchrun: python -m torch.distributed.run --standalone "
            "--nproc_per_node=2 -m tlcourse.allreduce_demo --out DIR"
        )
    try:
        if args.average:
            text = json.dumps(check_average(args.average, env))
            D.write_on_main(args.out / "average.json", lambda tmp: tmp.write_text(text), env)
            return 0
        torch.manual_seed(0)  # the same model and the same global batch on every rank
        model, x, y = nn.Linear(5, 1), torch.randn(8, 5), torch.randn(8, 1)
        big = gradient(model, x, y)  # what one process computes on the whole batch
        mine = gradient(model, x[env.rank :: env.world_size], y[env.rank :: env.world_size])
        averaged = mine.clone()
        dist.all_reduce(averaged, op=dist.ReduceOp.SUM)
        averaged /= env.world_size
        sizes = [10_000, 100_000, 1_000_000, 4_000_000]
        result = {
            "world_size": env.world_size, "backend": dist.get_backend(),
            "rank0_gradient": mine.tolist() if env.is_main else None,
            "big_batch_gradient": big.tolist(), "averaged_gradient": averaged.tolist(),
            "max_difference": float((averaged - big).abs().max()),
            "all_reduce_s": {n: time_all_reduce(n) for n in sizes},
        }  # fmt: skip
        text = json.dumps(result, indent=1)
        D.write_on_main(args.out / "allreduce.json", lambda tmp: tmp.write_text(text), env)
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
