"""Data-parallel training helpers on PyTorch's own engine (``torchrun``, DDP, FSDP2).

A training script launched by ``python -m torch.distributed.run`` (``torchrun``) starts one process
per device; ``torchrun`` tells each one who it is through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``). These helpers read that
environment, choose the backend (NCCL on CUDA GPUs, gloo on CPU), split a fixed global batch
into per-rank micro-batches, shard the data with ``DistributedSampler`` and write files from rank
0 only. :func:`launch` runs a package module under ``torchrun`` from a notebook or a test.

Introduced in notebooks/11_distributed_training.ipynb.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from tlcourse import repro
from tlcourse.atomic import atomic_write


class PortInUseError(RuntimeError):
    """The rendezvous port is already taken by another process."""


class LaunchError(RuntimeError):
    """A ``torchrun`` launch failed; the message holds the end of its output."""


@dataclass(frozen=True)
class DistEnv:
    """Who this process is in the job, as ``torchrun`` says through the environment.

    Attributes:
        rank: global index of this process, ``0 .. world_size - 1``.
        world_size: number of processes in the whole job (all nodes).
        local_rank: index of this process on its machine (picks its GPU).
        local_world_size: processes on this machine.
        master_addr, master_port: where rank 0 listens for the others.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 29500

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that logs and writes files."""
        return self.rank == 0


def read_env(environ: Mapping[str, str] | None = None) -> DistEnv:
    """The :class:`DistEnv` from ``torchrun``'s variables (defaults: a single process).

    Raises ``ValueError`` naming the variable when a value is not an integer or out of range.
    """
    env = os.environ if environ is None else environ

    def number(name: str, default: int) -> int:
        try:
            return int(env.get(name, default))
        except ValueError:
            raise ValueError(
                f"${name}={env[name]!r} is not an integer. torchrun sets it; unset it to run "
                "as a single process."
            ) from None

    world = number("WORLD_SIZE", 1)
    found = DistEnv(
        rank=number("RANK", 0), world_size=world, local_rank=number("LOCAL_RANK", 0),
        local_world_size=number("LOCAL_WORLD_SIZE", world),
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"), master_port=number("MASTER_PORT", 29500),
    )  # fmt: skip
    if world < 1 or not 0 <= found.rank < world:
        raise ValueError(
            f"RANK={found.rank} does not fit WORLD_SIZE={world}: ranks run from 0 to "
            "WORLD_SIZE - 1. Launch with torchrun rather than setting these by hand."
        )
    return found


def pick_device(env: DistEnv) -> torch.device:
    """``cuda:<local_rank>`` when :func:`tlcourse.repro.pick_device` picks CUDA, else the CPU.

    ``$TLCOURSE_DEVICE=cpu`` keeps every rank on the CPU (gloo), e.g. with fewer GPUs than ranks.
    """
    if repro.pick_device().type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"Local rank {env.local_rank} has no GPU (only {torch.cuda.device_count()}): "
                "start at most one process per GPU (--nproc_per_node=gpu), or set "
                "TLCOURSE_DEVICE=cpu to run every rank on the CPU."
            )
        return torch.device("cuda", env.local_rank)
    return torch.device("cpu")


def pick_backend(device: torch.device | str) -> str:
    """``"nccl"`` for CUDA devices (GPU-to-GPU transfers), ``"gloo"`` for the CPU."""
    if torch.device(device).type == "cuda" and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (we could bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def loopback_works() -> bool:
    """True when this machine can connect to itself on 127.0.0.1 (torchrun and gloo need it)."""
    with socket.socket() as server, socket.socket() as client:
        try:
            server.bind(("127.0.0.1", 0))
            server.listen()
            client.settimeout(2)
            client.connect(server.getsockname())
        except OSError:
            return False
    return True


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise :class:`PortInUseError` (with the fix) when ``host:port`` is taken."""
    if not port_free(port, host):
        raise PortInUseError(
            f"Port {port} on {host} is already in use (another job, or a run that has not exited). "
            "Pick another one (--master_port / MASTER_PORT), wait for the other run to end, or "
            "on one machine launch with --standalone, which finds a free port itself."
        )


def init(env: DistEnv | None = None, device: torch.device | None = None,
         timeout_s: float = 120.0) -> DistEnv:  # fmt: skip
    """Join the process group of a ``torchrun`` job (no-op for a single plain process).

    Picks the backend from ``device`` (default: :func:`pick_device`). A taken port raises
    :class:`PortInUseError` with the fix instead of a socket error.
    """
    env = env or read_env()
    if dist.is_initialized() or ("RANK" not in os.environ and env.world_size == 1):
        return env
    device = device or pick_device(env)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # Under torchrun, env:// joins the launcher's store; with a hand-made env, rank 0 opens one.
    where = None if "MASTER_PORT" in os.environ else f"tcp://{env.master_addr}:{env.master_port}"
    try:
        dist.init_process_group(
            pick_backend(device), init_method=where, rank=env.rank, world_size=env.world_size,
            timeout=timedelta(seconds=timeout_s),
        )  # fmt: skip
    except (RuntimeError, OSError) as err:
        if "EADDRINUSE" in str(err) or "address already in use" in str(err).lower():
            check_port(env.master_port, env.master_addr)  # raises the clear error
            raise PortInUseError(f"Port {env.master_port} is in use: {err}") from err
        raise
    return env


def cleanup() -> None:
    """Leave the process group (call it at the end of every rank, also after an error)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def per_rank_batch(global_batch: int, world_size: int, accum: int = 1) -> int:
    """The micro-batch each rank feeds per step: ``global_batch / (world_size * accum)``.

    The global batch (what one optimizer step averages over) stays fixed whatever the number of
    processes N and accumulation steps K; ``N * K`` must divide it (``ValueError`` otherwise,
    naming the nearest global batches that work).
    """
    if global_batch < 1 or world_size < 1 or accum < 1:
        raise ValueError(
            f"global batch ({global_batch}), processes ({world_size}) and accumulation steps "
            f"({accum}) must all be positive integers."
        )
    split = world_size * accum
    if global_batch % split:
        lower, upper = (global_batch // split) * split, (global_batch // split + 1) * split
        nearest = " or ".join(str(b) for b in (lower, upper) if b > 0)
        raise ValueError(
            f"A global batch of {global_batch} cannot be split evenly over {world_size} "
            f"process(es) x {accum} accumulation step(s) = {split} micro-batches. Use a global "
            f"batch that {split} divides (e.g. {nearest}), or change --nproc_per_node / --accum."
        )
    return global_batch // split


def shard_loader(dataset: Dataset, batch_size: int, env: DistEnv, *, seed: int = 0,
                 shuffle: bool = True, collate_fn: Callable | None = None) -> DataLoader:  # fmt: skip
    """A ``DataLoader`` over this rank's shard of ``dataset``, ``batch_size`` items per batch.

    ``DistributedSampler`` shuffles the whole dataset with ``seed + epoch`` (the same order on
    every rank), pads it with repeats to a multiple of the world size, and gives rank ``r`` the
    items ``r, r + N, r + 2N, ...``. Call ``loader.sampler.set_epoch(e)`` every epoch, or each
    epoch repeats the first one's order. Incomplete last batches are dropped.
    """
    sampler = DistributedSampler(
        dataset, num_replicas=env.world_size, rank=env.rank, shuffle=shuffle, seed=seed
    )
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                      num_workers=0, collate_fn=collate_fn)  # fmt: skip


def all_reduce_mean(value: float | torch.Tensor) -> float:
    """The mean of ``value`` over all ranks (just ``value`` without a process group)."""
    t = torch.as_tensor(value, dtype=torch.float64).clone()
    if dist.is_initialized():
        dist.all_reduce(t)
        t /= dist.get_world_size()
    return float(t)


def barrier() -> None:
    """Wait until every rank gets here (no-op without a process group)."""
    if dist.is_initialized():
        dist.barrier()


def write_on_main(path: str | os.PathLike, write: Callable[[Path], None], env: DistEnv) -> None:
    """Rank 0 writes ``path`` atomically (``write(tmp_path)``); every rank then waits for it.

    Only one process writes, so ranks never clobber one another, and a crash mid-write leaves the
    previous file intact. Call it on every rank (it holds a barrier).
    """
    if env.is_main:
        atomic_write(path, write)
    barrier()


def torchrun_command(module: str, nproc: int, args: Sequence[str] = (), *,
                     master_port: int | None = None) -> list[str]:  # fmt: skip
    """The command that runs ``python -m module args`` in ``nproc`` processes on this machine.

    Without ``master_port`` it uses ``--standalone`` (a local rendezvous on a free port).
    """
    if nproc < 1:
        raise ValueError(f"nproc must be at least 1, got {nproc}.")
    where = ["--standalone"] if master_port is None else [f"--master_port={master_port}"]
    return [sys.executable, "-m", "torch.distributed.run", *where,
            f"--nproc_per_node={nproc}", "-m", module, *map(str, args)]  # fmt: skip


def launch(module: str, nproc: int, args: Sequence[str] = (), *, master_port: int | None = None,
           timeout_s: float = 600, threads: int = 1) -> subprocess.CompletedProcess:  # fmt: skip
    """Run ``module`` under ``torchrun`` with ``nproc`` processes; return the finished process.

    Each process gets ``threads`` CPU threads (``OMP_NUM_THREADS``). A taken ``master_port``
    raises :class:`PortInUseError` before anything starts; a failed run raises
    :class:`LaunchError` with the end of its output.
    """
    if not loopback_works():
        raise LaunchError(
            "This machine cannot open a connection to itself (127.0.0.1), so torchrun's processes "
            "cannot meet; in a sandbox without networking, run the launch outside it."
        )
    if master_port is not None:
        check_port(master_port)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    cmd = torchrun_command(module, nproc, args, master_port=master_port)
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise LaunchError(f"{' '.join(cmd[1:])} ran over {timeout_s:.0f} s.") from err
    if done.returncode:
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        tail = (done.stdout + done.stderr)[-3000:]
        first = f"{errors[0]}\n" if errors else ""
        raise LaunchError(f"{first}{' '.join(cmd[1:])} exited with {done.returncode}:\n{tail}")
    return done


def multinode_command(module: str, args: Sequence[str], *, nnodes: int, nproc_per_node: int,
                      rdzv_endpoint: str, job_id: str = "tlcourse") -> str:  # fmt: skip
    """The ``torchrun`` line to type on every one of ``nnodes`` machines (the same on each).

    The c10d rendezvous at ``rdzv_endpoint`` (``host:port`` of one of the nodes) assigns the
    node ranks; every node must reach that port.
    """
    return (
        f"torchrun --nnodes={nnodes} --nproc_per_node={nproc_per_node} "
        f"--rdzv_backend=c10d --rdzv_endpoint={rdzv_endpoint} --rdzv_id={job_id} "
        f"-m {module} {' '.join(map(str, args))}"
    ).strip()
