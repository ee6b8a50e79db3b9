"""The README's table of notebook times is built from docs/timings.csv, which make test writes."""

import csv
import importlib.util
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _root_conftest():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_matches_the_csv():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "timings_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_notebook_has_a_row():
    with (ROOT / "docs" / "timings.csv").open(newline="") as f:
        listed = {row["notebook"] for row in csv.DictReader(f)}
    notebooks = {
        str(p.relative_to(ROOT))
        for d in ("notebooks", "solutions")
        for p in (ROOT / d).glob("*.ipynb")
    }
    assert notebooks <= listed, f"add rows to docs/timings.csv for {sorted(notebooks - listed)}"


def test_record_times_merges_the_measured_column(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROFILE", "quick")
    conftest = _root_conftest()
    monkeypatch.setattr(conftest, "_timing_column", lambda: "cpu_quick_s")
    path = tmp_path / "timings.csv"
    path.write_text(
        "notebook,cpu_quick_s,gpu_full_s\nnotebooks/a.ipynb,10.0,99.0\nnotebooks/b.ipynb,5.0,\n"
    )
    conftest.record_times({"notebooks/a.ipynb": 12.34, "notebooks/c.ipynb": 1.0}, path)
    with path.open(newline="") as f:
        rows = {row["notebook"]: row for row in csv.DictReader(f)}
    assert rows["notebooks/a.ipynb"] == {
        "notebook": "notebooks/a.ipynb",
        "cpu_quick_s": "12.3",
        "gpu_full_s": "99.0",
    }
    assert rows["notebooks/b.ipynb"]["cpu_quick_s"] == "5.0"
    assert rows["notebooks/c.ipynb"]["gpu_full_s"] == ""
    assert not list(tmp_path.glob("*.tmp"))


def test_render_marks_missing_figures():
    spec = importlib.util.spec_from_file_location(
        "timings_table", ROOT / "scripts" / "timings_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.render(
        [{"notebook": "notebooks/x.ipynb", "cpu_quick_s": "61.2", "gpu_full_s": ""}]
    )
    assert "| `notebooks/x.ipynb` | 61 s | not yet measured |" in table
