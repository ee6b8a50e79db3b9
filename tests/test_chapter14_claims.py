"""The claims of notebooks/14_capstone.ipynb's brief about the grader, checked outside the notebook.

"Each part is scored on its own: a broken model.onnx costs only the export points": also for a
model that loads and names the classes but was exported with a fixed batch size (a common slip:
``torch.onnx.export`` without ``dynamic_shapes``), whose run fails inside onnxruntime; the
accuracy row still scores predictions.csv, and the other submissions are graded.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from tlcourse import capstone, export

pytestmark = pytest.mark.claims


class _Flat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 32 * 32, len(capstone.CLASSES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(images.float().flatten(1) / 255)


def test_a_fixed_batch_model_costs_only_the_export_points(tmp_path):
    data = capstone.make(capstone.PRACTICE_SEED, tmp_path / "data")
    labels = data / "instructor" / "test_labels.csv"
    subs = tmp_path / "subs"
    for name in ("fixed-batch", "no-model"):
        (subs / name).mkdir(parents=True)
        shutil.copy(labels, subs / name / "predictions.csv")  # perfect predictions
    example = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    program = torch.onnx.export(_Flat().eval(), (example,), dynamo=True, verbose=False)  # batch 2
    program.model.metadata_props.update(export.image_metadata(capstone.CLASSES, (3, 32, 32)))
    program.save(Path(subs / "fixed-batch" / "model.onnx"), external_data=False)
    reports = {r.student: r for r in capstone.grade(subs, labels, tmp_path / "grades.csv")}
    assert set(reports) == {"fixed-batch", "no-model"}
    rows = {r.question: r for r in reports["fixed-batch"].rows}
    assert rows["accuracy"].points == sum(p for _, p in capstone.ACCURACY_THRESHOLDS)
    for question in capstone.EXPORT_POINTS:
        assert rows[question].points == 0 and "did not run" in rows[question].message
