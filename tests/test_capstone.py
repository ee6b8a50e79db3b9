"""The capstone: data made from a seed without test labels, and the project grader's scoring.

The reference submission is trained like solutions/14_capstone.ipynb (glyphnet-s, train+val,
L2-SP, exported with the preprocessing inside) and must reach the top accuracy threshold.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tlcourse import capstone

TOP = sum(p for _, p in capstone.ACCURACY_THRESHOLDS)
EXPORT = sum(capstone.EXPORT_POINTS.values())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return capstone.make(capstone.PRACTICE_SEED, tmp_path_factory.mktemp("cap") / "data")


def _points(report) -> dict[str, object]:
    return {r.question: r.points for r in report.rows}


def _train_reference(student: Path) -> torch.nn.Module:
    """The solution's recipe: head 2 epochs, then all layers 8 epochs with L2-SP, on train+val."""
    return capstone.reference_recipe(student)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """A complete submission folder from the reference recipe."""
    from tlcourse import export, zoo
    from tlcourse.models.glyphnet import GLYPH_MEAN, GLYPH_STD

    torch.set_num_threads(1)
    student = data / "student"
    model = _train_reference(student)
    wrapped = export.WithPreprocessing(model, GLYPH_MEAN, GLYPH_STD).eval()
    out = tmp_path_factory.mktemp("subs") / "reference"
    out.mkdir()
    ids, images = capstone.test_images(student)
    meta = export.image_metadata(capstone.CLASSES, zoo.entry("glyphnet-s").input_size)
    export.to_onnx(wrapped, torch.from_numpy(images[:2]), out / "model.onnx", metadata=meta)
    with torch.no_grad():
        labels = wrapped(torch.from_numpy(images)).argmax(1).tolist()
    with open(out / "predictions.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(
            [("id", "label"), *((i, capstone.CLASSES[k]) for i, k in zip(ids, labels, strict=True))]
        )
    (out / "report.md").write_text("# Report\n\nglyphnet-s, L2-SP, refit on train+val.\n")
    return out


def test_make_is_deterministic_and_hides_the_test_labels(data, tmp_path):
    again = capstone.make(capstone.PRACTICE_SEED, tmp_path / "again")
    other = capstone.make(capstone.PRACTICE_SEED + 1, tmp_path / "other")

    def digest(root: Path) -> str:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return hashlib.sha256(
            b"".join(p.relative_to(root).as_posix().encode() + p.read_bytes() for p in files)
        ).hexdigest()

    assert digest(data) == digest(again)
    assert digest(data / "student") != digest(other / "student")
    student = data / "student"
    assert sorted(p.name for p in (student / "train").iterdir()) == capstone.CLASSES
    test = list((student / "test").iterdir())
    assert len(test) == capstone.PER_CLASS["test"] * len(capstone.CLASSES)
    assert all(p.is_file() and p.suffix == ".png" for p in test)  # no class folders
    assert not any("label" in p.name or p.suffix == ".csv" for p in student.rglob("*"))
    labels = capstone.read_pairs(data / "instructor" / "test_labels.csv")
    assert sorted(labels) == sorted(p.stem for p in test)
    with pytest.raises(FileExistsError):
        capstone.make(1, again)
    with pytest.raises(ValueError, match="test_images"):
        capstone.load(student, "test")


def test_the_glyphs_differ():
    """No two capstone letters render alike in the same font (the task is learnable)."""
    from tlcourse.datasets.glyphs import glyph_mask

    masks = np.stack(
        [
            np.asarray(glyph_mask("DejaVuSans.ttf", 24, c), dtype=float).ravel()
            for c in capstone.CHARS.values()
        ]
    )
    assert len(set(capstone.CHARS.values())) == len(capstone.CHARS)
    assert all(np.abs(a - b).sum() > 0 for i, a in enumerate(masks) for b in masks[i + 1 :])


def test_reference_submission_scores_the_top(data, reference):
    labels = capstone.read_pairs(data / "instructor" / "test_labels.csv")
    report = capstone.grade_submission(reference, labels, data / "student" / "test")
    points = _points(report)
    assert points["accuracy"] == TOP, report.rows
    assert report.total == TOP + EXPORT, report.rows
    assert points["report"] == ""  # left for the instructor
    assert "agrees with predictions.csv on 100.0 %" in report.rows[1].message


def test_blank_broken_and_formula_named_submissions(data, reference, tmp_path):
    subs = tmp_path / "subs"
    (subs / "blank").mkdir(parents=True)
    broken = subs / "broken-onnx"
    shutil.copytree(reference, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    no_preds = subs / "no-predictions"
    shutil.copytree(reference, no_preds)
    (no_preds / "predictions.csv").unlink()
    shutil.copytree(reference, subs / "=HYPERLINK(evil)")
    out = tmp_path / "grades.csv"
    reports = {
        r.student: r for r in capstone.grade(subs, data / "instructor" / "test_labels.csv", out)
    }
    assert reports["blank"].total == 0
    assert _points(reports["broken-onnx"])["accuracy"] == TOP
    assert reports["broken-onnx"].total == TOP  # only the export points are lost
    assert "did not run" in reports["broken-onnx"].rows[1].message
    assert reports["no-predictions"].total == EXPORT  # only the accuracy points are lost
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["student", "question", "points", "max", "message"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert ["'=HYPERLINK(evil)", "accuracy", str(TOP)] in [r[:3] for r in rows]


def test_cli_make_grade_and_rubric(data, reference, tmp_path, capsys):
    from tlcourse.cli import main

    subs = tmp_path / "subs"
    shutil.copytree(reference, subs / "ref")
    labels = data / "instructor" / "test_labels.csv"
    assert (
        main(
            [
                "capstone",
                "grade",
                str(subs),
                "--labels",
                str(labels),
                "--out",
                str(tmp_path / "g.csv"),
            ]
        )
        == 0
    )
    assert f"ref: {TOP + EXPORT} auto points" in capsys.readouterr().out
    assert main(["capstone", "rubric"]) == 0
    assert f"{capstone.SIZE_BUDGET_MB} MB" in capsys.readouterr().out
    assert main(["capstone", "make", "--seed", "3", "--out", str(data)]) == 1  # exists: refused


def test_accuracy_points_follow_the_thresholds():
    (t1, p1), (t2, p2), (t3, p3) = capstone.ACCURACY_THRESHOLDS
    assert capstone.accuracy_points(t1 - 1e-9) == 0
    assert capstone.accuracy_points(t1) == p1
    assert capstone.accuracy_points(t2) == p1 + p2
    assert capstone.accuracy_points(1.0) == p1 + p2 + p3
