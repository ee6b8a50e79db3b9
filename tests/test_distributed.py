"""tlcourse.distributed and tlcourse.ddp_train: the torchrun environment, batch splitting,
sharding, clear errors, and the chapter-11 claims on real torchrun launches (gloo, CPU):
one and two processes on the same global batch end with the same weights, and so does
gradient accumulation with no_sync."""

from __future__ import annotations

import json
import socket

import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import TensorDataset

from tlcourse import distributed as D


def test_read_env_defaults_and_values():
    assert D.read_env({}) == D.DistEnv()
    env = D.read_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                      "MASTER_ADDR": "node0", "MASTER_PORT": "29400"})  # fmt: skip
    assert (env.rank, env.world_size, env.local_rank, env.local_world_size) == (3, 4, 1, 2)
    assert env.master_addr == "node0" and env.master_port == 29400 and not env.is_main


@pytest.mark.parametrize(
    ("environ", "words"),
    [({"RANK": "x"}, "$RANK='x' is not an integer"), ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK=2")],
)
def test_read_env_bad_values(environ, words):
    with pytest.raises(ValueError, match=words.replace("$", r"\$")):
        D.read_env(environ)


def test_backend_by_device():
    assert D.pick_backend("cpu") == "gloo"
    assert D.loopback_works()
    assert D.pick_device(D.DistEnv()).type in ("cpu", "cuda")


def test_per_rank_batch_keeps_global_batch():
    assert D.per_rank_batch(48, 1) == 48
    assert D.per_rank_batch(48, 2) == 24
    assert D.per_rank_batch(48, 2, accum=3) == 8
    with pytest.raises(
        ValueError, match=r"2 process\(es\) x 2 .* = 4 micro-batches.*e\.g\. 48 or 52"
    ):
        D.per_rank_batch(50, 2, accum=2)
    with pytest.raises(ValueError, match="positive"):
        D.per_rank_batch(48, 0)


def test_shard_loader_partitions_and_reshuffles():
    data = TensorDataset(torch.arange(12))
    shards = [D.shard_loader(data, 2, D.DistEnv(rank=r, world_size=2), seed=1) for r in (0, 1)]
    first = [torch.cat([b[0] for b in loader]).tolist() for loader in shards]
    assert sorted(first[0] + first[1]) == list(range(12))  # disjoint, covering
    for loader in shards:
        loader.sampler.set_epoch(1)
    again = [torch.cat([b[0] for b in loader]).tolist() for loader in shards]
    assert again != first and sorted(again[0] + again[1]) == list(range(12))


def test_taken_port_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not D.port_free(port)
        with pytest.raises(D.PortInUseError, match="--standalone"):
            D.launch("tlcourse.ddp_train", 2, ["--out", "x"], master_port=port)
        env = D.DistEnv(rank=0, world_size=2, master_port=port)
        with pytest.raises(D.PortInUseError, match="already in use"):
            D.init(env, torch.device("cpu"), timeout_s=5)  # rank 0 cannot open its store


def test_commands():
    cmd = D.torchrun_command("tlcourse.ddp_train", 2, ["--epochs", 1])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       "-m", "tlcourse.ddp_train", "--epochs", "1"]  # fmt: skip
    line = D.multinode_command("tlcourse.ddp_train", ["--out", "ckpt"], nnodes=2,
                               nproc_per_node=8, rdzv_endpoint="node0:29400")  # fmt: skip
    assert "--nnodes=2" in line and "--rdzv_endpoint=node0:29400" in line and "c10d" in line


def test_write_on_main_only_rank_zero(tmp_path):
    D.write_on_main(tmp_path / "a.txt", lambda tmp: tmp.write_text("0"), D.DistEnv(rank=0))
    D.write_on_main(
        tmp_path / "b.txt", lambda tmp: tmp.write_text("1"), D.DistEnv(rank=1, world_size=2)
    )
    assert (tmp_path / "a.txt").read_text() == "0" and not (tmp_path / "b.txt").exists()


# ------------------------------------------------------------------ real torchrun launches


@pytest.fixture(scope="module")
def task_data():
    from tlcourse.tasks import IMAGE_TASK

    IMAGE_TASK.root()  # build the data once here, not in every launch


def _train(out, nproc: int, *extra) -> tuple[dict, dict]:
    D.launch("tlcourse.ddp_train", nproc, ["--out", out, "--epochs", 1, *extra], timeout_s=900)
    return json.loads((out / "metrics.json").read_text()), load_file(str(out / "model.safetensors"))


def _max_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.slow
@pytest.mark.claims
def test_one_and_two_processes_and_accumulation_agree(task_data, tmp_path):
    m1, w1 = _train(tmp_path / "n1", 1, "--global-batch", 48)
    m2, w2 = _train(tmp_path / "n2", 2, "--global-batch", 48)
    mk, wk = _train(tmp_path / "n2k2", 2, "--global-batch", 48, "--accum", 2)
    assert (m1["per_rank_batch"], m2["per_rank_batch"], mk["per_rank_batch"]) == (48, 24, 12)
    assert m1["steps_per_epoch"] == m2["steps_per_epoch"] == mk["steps_per_epoch"] == 10
    assert m2["backend"] == "gloo" and m2["world_size"] == 2
    assert _max_diff(w1, w2) < 1e-5
    assert _max_diff(w1, wk) < 1e-5
    assert abs(m1["val_accuracy"] - m2["val_accuracy"]) < 1e-3


@pytest.mark.slow
def test_bad_global_batch_fails_clearly(task_data, tmp_path):
    with pytest.raises(D.LaunchError, match="cannot be split evenly over 2 process"):
        D.launch("tlcourse.ddp_train", 2, ["--out", tmp_path, "--global-batch", 47])
    assert not (tmp_path / "metrics.json").exists()


def test_fp16_on_cpu_is_a_clear_error(tmp_path, capsys):
    from tlcourse import ddp_train

    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed on CUDA")
    assert ddp_train.main(["--out", str(tmp_path), "--precision", "fp16"]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_launch_without_loopback_is_clear(monkeypatch):
    monkeypatch.setattr(D, "loopback_works", lambda: False)
    with pytest.raises(D.LaunchError, match="cannot open a connection to itself"):
        D.launch("tlcourse.ddp_train", 2, ["--out", "x"])
