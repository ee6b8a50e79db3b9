"""A data-parallel fine-tuning run, launched with ``torchrun`` (DDP, or FSDP2 with ``--fsdp``).

    python -m torch.distributed.run --standalone --nproc_per_node=N -m tlcourse.ddp_train \\
        --out DIR --epochs E --global-batch B [--accum K] [--precision fp32|bf16|fp16] [--fsdp]

Fine-tunes the last backbone block and a fresh head of the course task's backbone (quick
profile: ``glyphnet-s`` on 20 labelled Greek glyphs per class; full: ResNet-18 on Oxford-IIIT
Pets), with every BatchNorm in eval mode (pretrained statistics) unless ``--bn-train``: then one
process and N processes on the same global batch end with the same weights. Every optimizer step
averages over ``B`` examples whatever N and K: each rank feeds ``B / (N K)`` per micro-batch.
Rank 0 writes ``DIR/model.safetensors`` and ``DIR/metrics.json`` atomically.

Introduced in notebooks/11_distributed_training.ipynb.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from tlcourse import distributed as D

# What torchrun tells every process (recorded in metrics.json to show them).
TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                 "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="torchrun ... -m tlcourse.ddp_train", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--out", required=True, type=Path, help="folder for model.safetensors and metrics.json"
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument(
        "--global-batch",
        type=int,
        default=48,
        help="examples per optimizer step, all ranks together",
    )
    p.add_argument(
        "--accum", type=int, default=1, help="micro-batches accumulated per optimizer step"
    )
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--fsdp", action="store_true", help="shard parameters with FSDP2 instead of DDP")
    p.add_argument(
        "--bn-train", action="store_true", help="BatchNorm of the trained block in train mode"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.05)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error(f"--epochs must be at least 1, got {args.epochs}.")
    return args  # fmt: skip


def build_model(num_classes: int, seed: int) -> nn.Module:
    """The task's pretrained backbone with a fresh head; only the last block and the head train."""
    from tlcourse import surgery, zoo
    from tlcourse.tasks import IMAGE_TASK

    torch.manual_seed(seed)  # the same head on every rank (DDP also broadcasts rank 0's weights)
    model = zoo.load(IMAGE_TASK.backbone_for(), num_classes=num_classes)
    return surgery.freeze_blocks(model, len(surgery.blocks(model)) - 1)


def set_modes(model: nn.Module, bn_train: bool) -> None:
    """Train mode, except BatchNorm layers (eval: pretrained statistics) unless ``bn_train``."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            trains = bn_train and any(p.requires_grad for p in m.parameters())
            m.train(trains)


def wrap(model: nn.Module, device: torch.device, fsdp: bool) -> nn.Module:
    """DDP (a full replica per rank) or FSDP2 (each rank keeps 1/N of every parameter)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    model.to(device)
    if not dist.is_initialized():
        return model
    if not fsdp:
        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))  # explicit: "cpu" on CPU
    for _, block in [*model.backbone.named_children(), ("head", model.head)]:
        if any(True for _ in block.parameters()):
            fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def grad_sync(model: nn.Module, enabled: bool):
    """A context in which backward all-reduces gradients (``enabled``) or only accumulates them.

    DDP: ``model.no_sync()``; FSDP2: ``set_requires_gradient_sync``.
    """
    if enabled or not dist.is_initialized():
        return contextlib.nullcontext()
    if hasattr(model, "no_sync"):
        return model.no_sync()
    model.set_requires_gradient_sync(False)
    return _restore_sync(model)


@contextlib.contextmanager
def _restore_sync(model: nn.Module):
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def train_step(model: nn.Module, micro: list, optimizer: torch.optim.Optimizer, device: torch.device,
               precision: str, scaler: torch.amp.GradScaler | None) -> float:  # fmt: skip
    """One optimizer step over ``len(micro)`` micro-batches ``(x, y)``; returns the mean loss.

    Each loss is divided by the number of micro-batches, and gradients are all-reduced only on
    the last backward: the step equals one step on all micro-batches at once.
    """
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, (x, y) in enumerate(micro):
        with grad_sync(model, enabled=i == len(micro) - 1), autocast(device, precision):
            loss = nn.functional.cross_entropy(model(x.to(device)), y.to(device)) / len(micro)
        (scaler.scale(loss) if scaler else loss).backward()
        total += loss.item()
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return total


@torch.no_grad()
def accuracy(model: nn.Module, dataset, device: torch.device, precision: str) -> float:
    """Accuracy on the whole of ``dataset``, computed by every rank (FSDP needs all of them)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=256, num_workers=0)
    model.eval()
    correct = 0
    for x, y in loader:
        with autocast(device, precision):
            correct += int((model(x.to(device)).argmax(1).cpu() == y).sum())
    return correct / len(dataset)


def full_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight as a whole CPU tensor (FSDP shards gathered; call on every rank)."""
    from torch.distributed.tensor import DTensor

    inner = getattr(model, "module", model)
    state = inner.state_dict()
    return {k: (v.full_tensor() if isinstance(v, DTensor) else v).detach().cpu().contiguous().clone()
            for k, v in state.items()}  # fmt: skip


def memory_report(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """This rank's share: parameter and optimizer-state bytes held locally, and one shard's shape."""
    from torch.distributed.tensor import DTensor

    def local(t: torch.Tensor) -> torch.Tensor:
        return t.to_local() if isinstance(t, DTensor) else t

    params = list(getattr(model, "module", model).named_parameters())
    name, example = next((n, p) for n, p in params if p.requires_grad and p.ndim > 1)
    states = [local(v) for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    return {
        "param_bytes": sum(local(p).numel() * local(p).element_size() for _, p in params),
        "optimizer_bytes": sum(t.numel() * t.element_size() for t in states),
        "example": name, "global_shape": list(example.shape), "local_shape": list(local(example).shape),
        "type": type(example).__name__,
    }  # fmt: skip


def gather(obj: dict) -> list[dict]:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group)."""
    if not dist.is_initialized():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def check_args(args: argparse.Namespace, env: D.DistEnv, device: torch.device) -> int:
    """Refuse bad options before any process joins the group; return the per-rank micro-batch."""
    if args.precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "--precision fp16 needs a CUDA GPU (with a gradient scaler); on CPU use bf16."
        )
    return D.per_rank_batch(args.global_batch, env.world_size, args.accum)


def load_data(env: D.DistEnv):
    """The task's splits; rank 0 builds them if needed while the others wait."""
    from tlcourse.tasks import IMAGE_TASK

    if env.is_main:
        IMAGE_TASK.root()
    D.barrier()
    return IMAGE_TASK.load()


def run(args: argparse.Namespace, env: D.DistEnv, device: torch.device, start: float) -> dict:
    """Train as rank ``env.rank``; return the metrics (the same dict on every rank)."""
    micro_batch = check_args(args, env, device)
    data = load_data(env)
    steps = len(data.train) // args.global_batch
    if steps == 0:
        raise ValueError(
            f"--global-batch {args.global_batch} is larger than the {len(data.train)} training examples."
        )
    model = wrap(build_model(len(data.classes), args.seed), device, args.fsdp)
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=args.lr, momentum=0.9
    )
    scaler = torch.amp.GradScaler("cuda") if args.precision == "fp16" else None
    loader = D.shard_loader(data.train, micro_batch, env, seed=args.seed)
    losses, epoch_s = [], []
    D.barrier()
    ready = time.perf_counter()
    for epoch in range(args.epochs):
        loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every rank
        set_modes(model, args.bn_train)
        batches, total, tic = iter(loader), 0.0, time.perf_counter()
        for _ in range(steps):
            micro = [next(batches) for _ in range(args.accum)]
            total += train_step(model, micro, optimizer, device, args.precision, scaler)
        losses.append(D.all_reduce_mean(total / steps))
        epoch_s.append(time.perf_counter() - tic)
    D.barrier()
    train_s = time.perf_counter() - ready
    val_accuracy = accuracy(model, data.val, device, args.precision)
    ranks = gather(memory_report(model, optimizer))
    state = full_state(model)
    D.write_on_main(args.out / "model.safetensors", lambda tmp: _save(state, tmp), env)
    return {
        "world_size": env.world_size, "accum": args.accum, "global_batch": args.global_batch,
        "per_rank_batch": micro_batch, "steps_per_epoch": steps, "epochs": args.epochs,
        "precision": args.precision, "fsdp": args.fsdp, "bn_train": args.bn_train, "seed": args.seed,
        "backend": dist.get_backend() if dist.is_initialized() else "none", "device": str(device),
        "threads": torch.get_num_threads(), "train_loss": losses, "val_accuracy": val_accuracy,
        "epoch_s": epoch_s, "train_s": train_s, "startup_s": ready - start, "ranks": ranks,
        "train_examples": len(data.train), "val_examples": len(data.val),
        "torchrun_env": {k: os.environ[k] for k in TORCHRUN_VARS if k in os.environ},
    }  # fmt: skip


def _save(state: dict[str, torch.Tensor], tmp: Path) -> None:
    from safetensors.torch import save_file

    save_file(state, str(tmp))


def main(argv: list[str] | None = None) -> int:
    """Entry point of every rank: join the group, train, write on rank 0, leave the group."""
    start = time.perf_counter()
    args = parse_args(argv)
    env = D.read_env()
    device = D.pick_device(env)
    try:
        check_args(args, env, device)  # every rank fails alike, before anyone waits for the others
        D.init(env, device)
        metrics = run(args, env, device, start)
        text = json.dumps(metrics, indent=1)
        D.write_on_main(args.out / "metrics.json", lambda tmp: tmp.write_text(text), env)
    except ValueError as err:  # bad options: one clear line (from rank 0), no traceback per rank
        if env.is_main:
            print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
