import subprocess
import sys

import pytest

from tlcourse import cli, doctor


def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert "Unknown command 'frobnicate'" in capsys.readouterr().err


def test_doctor_reports_and_passes_when_assets_present(capsys):
    status = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert "versions: python" in out and "torch" in out and "profile" in out and "cache" in out
    assert status == 0, out


def test_doctor_fails_with_fix_when_asset_missing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(doctor, "required_assets", lambda: {"glyphnet-s": True, "kwsnet": False})
    assert doctor.cli_main([]) == 1
    out = capsys.readouterr().out
    assert "BAD  weights kwsnet" in out and "zoo build kwsnet" in out and "1 problem(s)" in out


def test_doctor_unknown_profile(capsys):
    assert doctor.cli_main(["--profile", "medium"]) == 1
    assert "Unknown profile 'medium'" in capsys.readouterr().out


@pytest.mark.slow
def test_python_dash_m_entry_point():
    done = subprocess.run(
        [sys.executable, "-m", "tlcourse", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "doctor" in done.stdout
