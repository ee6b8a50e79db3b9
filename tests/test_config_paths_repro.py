import os
import subprocess
import sys

import pytest
import torch

from tlcourse import config, paths, repro


def test_profile_from_env_and_argument(monkeypatch):
    monkeypatch.delenv("TLCOURSE_PROFILE", raising=False)
    assert config.get_profile() == "quick"
    monkeypatch.setenv("TLCOURSE_PROFILE", "FULL")
    assert config.get_profile() == "full"
    assert config.get_profile("quick") == "quick"
    assert config.choose("full", quick=1, full=2) == 2


def test_unknown_profile_suggests_a_fix(monkeypatch):
    with pytest.raises(config.ConfigError, match=r"'quik'.*Did you mean 'quick'.*TLCOURSE_PROFILE"):
        config.get_profile("quik")
    monkeypatch.setenv("TLCOURSE_PROFILE", "fast")
    with pytest.raises(config.ConfigError, match="from the TLCOURSE_PROFILE"):
        config.get_profile()


def test_cache_home_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path / "cache"))
    assert paths.cache_dir("data", "x") == tmp_path / "cache" / "data" / "x"
    assert (tmp_path / "cache" / "data" / "x").is_dir()


def test_cache_that_cannot_be_created_names_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TLCOURSE_HOME", str(blocker / "cache"))
    with pytest.raises(paths.CacheError, match="TLCOURSE_HOME"):
        paths.home()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_cache(tmp_path, monkeypatch):
    tmp_path.chmod(0o500)
    monkeypatch.setenv("TLCOURSE_HOME", str(tmp_path))
    with pytest.raises(paths.CacheError, match="not writable"):
        paths.home()


def test_imports_do_no_work(tmp_path):
    """Importing the package's modules writes nothing to the cwd or the cache, and seeds nothing."""
    code = (
        "import torch; before = torch.initial_seed();"
        "import tlcourse.engine, tlcourse.recipes, tlcourse.zoo, tlcourse.plots, tlcourse.doctor;"
        "import tlcourse.datasets.images, tlcourse.datasets.speech, tlcourse.datasets.text;"
        "assert torch.initial_seed() == before"
    )
    env = {**os.environ, "TLCOURSE_HOME": str(tmp_path / "home")}
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=120)
    assert list(tmp_path.iterdir()) == []


def test_seeding_repeats():
    g1 = repro.seed_everything(3)
    a = torch.rand(3), torch.rand(2, generator=g1)
    g2 = repro.seed_everything(3)
    b = torch.rand(3), torch.rand(2, generator=g2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_pick_device(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    assert repro.pick_device() == torch.device("cpu")
    assert repro.pick_device("cpu").type == "cpu"
