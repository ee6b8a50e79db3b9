import pytest
import torch
from torch.optim.lr_scheduler import OneCycleLR

from tlcourse import checkpoint as ckpt
from tlcourse.callbacks import Checkpoint, EarlyStopping, LRScheduler, SimulatedInterrupt
from tlcourse.engine import fit
from tlcourse.repro import deterministic, seed_everything

from helpers import loader, model


def _run(path, epochs=4, interrupt_at=None):
    seed_everything(0)
    m = model()
    m.backbone.pool.append(torch.nn.Dropout(0.3))  # randomness inside the step, too
    steps = 4 * len(loader())
    cbs = [
        LRScheduler(lambda opt: OneCycleLR(opt, max_lr=0.05, total_steps=steps)),
        Checkpoint(path),
    ]
    if interrupt_at:
        cbs.append(SimulatedInterrupt(interrupt_at))
    history = fit(m, loader(), epochs=epochs, lr=0.05, callbacks=cbs)
    return m, history


def test_resumed_run_matches_uninterrupted(tmp_path):
    deterministic(True)
    try:
        full, full_history = _run(tmp_path / "a.pt")
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path / "b.pt", interrupt_at=2)
        resumed, resumed_history = _run(tmp_path / "b.pt")
    finally:
        deterministic(False)
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [r["train_loss"] for r in full_history.rows] == [
        r["train_loss"] for r in resumed_history.rows
    ]


def test_interrupted_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    fit(model(), loader(), epochs=1, callbacks=[Checkpoint(path)])
    good = path.read_bytes()

    def crash(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        fit(model(), loader(), epochs=2, callbacks=[Checkpoint(path, resume=True)])
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temp file left behind


def test_resume_from_other_architecture_names_the_fix(tmp_path):
    path = tmp_path / "run.pt"
    fit(model(num_classes=3), loader(), epochs=1, callbacks=[Checkpoint(path)])
    with pytest.raises(
        ckpt.CheckpointMismatchError, match=r"different architecture.*head.weight.*num_classes"
    ):
        fit(model(num_classes=5), loader(num_classes=5), epochs=2, callbacks=[Checkpoint(path)])


def test_early_stopping_stops_and_restores_best():
    m = model()
    seen = []

    class Spy:
        order = 30

        def on_epoch_end(self, state):
            seen.append({k: v.clone() for k, v in state.model.state_dict().items()})

    val = loader(seed=1, shuffle=False)
    stopper = EarlyStopping(
        monitor="val_loss", patience=1, min_delta=10.0
    )  # nothing counts as better
    history = fit(m, loader(), epochs=10, lr=1e-2, val_loader=val, callbacks=[stopper, Spy()])
    assert len(history) == 2 and stopper.best_epoch == 1
    for k, v in m.state_dict().items():
        assert torch.equal(v, seen[0][k])


def test_scheduler_steps_per_batch():
    m = model()
    n = 3 * len(loader())
    history = fit(
        m, loader(), epochs=3, callbacks=[LRScheduler(lambda o: OneCycleLR(o, 0.1, total_steps=n))]
    )
    lrs = history.series("lr")
    assert lrs[-1] < 1e-3 < max(lrs)


def test_bad_callback_arguments():
    with pytest.raises(ValueError, match="mode"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="interval"):
        LRScheduler(lambda o: None, interval="batch")
