import pytest
import torch

from tlcourse.checkpoint import (
    CheckpointMismatchError,
    atomic_write,
    load_checkpoint,
    save_checkpoint,
)

from helpers import model


def test_roundtrip_with_extra_state(tmp_path):
    a, b = model(seed=0), model(seed=1)
    save_checkpoint(tmp_path / "c.pt", a, epoch=3, note="hello")
    extra = load_checkpoint(tmp_path / "c.pt", b)
    assert extra == {"epoch": 3, "note": "hello"}
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        load_checkpoint(tmp_path / "nope.pt", model())
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatchError, match="Delete it"):
        load_checkpoint(tmp_path / "bad.pt", model())


def test_atomic_write_failure_leaves_old_content(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(tmp):
        tmp.write_text("new but partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]
