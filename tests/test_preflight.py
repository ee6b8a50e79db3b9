"""preflight builds what is missing, verifies what is there, and reports failures without stopping."""

from pathlib import Path

import pytest

from tlcourse import preflight, zoo
from tlcourse.datasets import catalog
from tlcourse.datasets.info import DatasetInfo, dataset_root


def _info(name: str, prepare) -> DatasetInfo:
    return DatasetInfo(name, "image", "quick", 2, "tiny", "CC0", "test", "sheet", prepare, None)


@pytest.fixture
def fake_catalog(monkeypatch):
    calls = []

    def make(name):
        def prepare() -> Path:
            calls.append(name)
            root = dataset_root(name)
            root.mkdir(parents=True, exist_ok=True)
            return root

        return prepare

    def broken() -> Path:
        raise OSError("disk full: free some space")

    datasets = {
        "a-set": _info("a-set", make("a-set")),
        "b-set": _info("b-set", make("b-set")),
        "bad-set": _info("bad-set", broken),
    }
    monkeypatch.setattr(catalog, "all_datasets", lambda: datasets)
    return calls


def test_first_run_builds_second_run_verifies(fake_catalog):
    first = {s.name: s.status for s in preflight.dataset_steps("quick")}
    assert first == {"a-set": "built", "b-set": "built", "bad-set": "FAILED"}
    second = {s.name: s.status for s in preflight.dataset_steps("quick")}
    assert second["a-set"] == second["b-set"] == "ready"
    assert fake_catalog == ["a-set", "b-set", "a-set", "b-set"]


def test_failure_is_reported_with_its_message(fake_catalog):
    steps = preflight.dataset_steps("quick")
    text = preflight.report(steps)
    assert "FAILED" in text and "disk full: free some space" in text


def test_models_of_the_profile_are_loaded(monkeypatch):
    loaded = []
    monkeypatch.setattr(zoo, "load_backbone", loaded.append)
    steps = preflight.model_steps("quick")
    quick = sorted(n for n, e in zoo.entries().items() if e.profile == "quick")
    assert [s.name for s in steps] == quick == loaded
    assert all(s.status == "ready" for s in steps)


def test_cli_exit_status_says_whether_everything_is_ready(fake_catalog, monkeypatch, capsys):
    monkeypatch.setattr(zoo, "load_backbone", lambda name: None)
    assert preflight.cli_main([]) == 1
    assert "bad-set" in capsys.readouterr().out
