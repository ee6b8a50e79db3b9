"""``python -m tlcourse predict``: a folder classified offline, bad files reported, torch never loaded."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlcourse import export, predict
from tlcourse.nets import tiny_cnn

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["circle", "square", "=SUM(A1)"]  # a class name a spreadsheet would run as a formula


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = export.WithPreprocessing(tiny_cnn(num_classes=3, width=4), (0.5,) * 3, (0.25,) * 3)
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    meta = export.image_metadata(CLASSES, (3, 16, 16))
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    return export.to_onnx(model, x, path, metadata=meta), model.eval()


def _folder(root: Path) -> dict[str, np.ndarray]:
    """Images of the model's size (RGB, grey, in a subfolder), one to resize, and bad files."""
    rng = np.random.default_rng(0)
    pixels = {}
    for name in ("a.png", "b.jpg.png", "sub/c.png"):
        pixels[name] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[name]).save(root / name)
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / "grey.png")
    Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(root / "big.png")
    (root / "notes.txt").write_text("not an image")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (root / ".hidden.png").write_bytes(b"ignored")
    return pixels


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_predict_command_classifies_a_folder_with_bad_files(exported, tmp_path):
    model_path, model = exported
    folder = tmp_path / "images"
    pixels = _folder(folder)
    done = _run(["-m", "tlcourse", "predict", str(model_path), str(folder)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "5 classified, 2 could not be read" in done.stdout
    with open(tmp_path / "predictions.csv", newline="", encoding="utf-8") as fh:
        rows = {r["file"]: r for r in csv.DictReader(fh)}
    assert sorted(rows) == sorted([*pixels, "grey.png", "big.png", "notes.txt", "broken.png"])
    assert "not a readable image" in rows["notes.txt"]["error"] and not rows["notes.txt"]["label"]
    assert "not a readable image" in rows["broken.png"]["error"]
    batch = torch.from_numpy(np.stack([pixels[n].transpose(2, 0, 1) for n in sorted(pixels)]))
    with torch.no_grad():
        expected = torch.softmax(model(batch), -1)
    for name, p in zip(sorted(pixels), expected, strict=True):
        label = CLASSES[int(p.argmax())]
        assert rows[name]["label"] in (label, "'" + label)  # formula-like names are neutralised
        assert float(rows[name]["confidence"]) == pytest.approx(float(p.max()), abs=1e-4)
    assert all(not r["label"].startswith("=") for r in rows.values())


def test_predict_never_imports_torch(exported, tmp_path):
    folder = tmp_path / "images"
    _folder(folder)
    code = (
        "import sys; from tlcourse.predict import cli_main; "
        f"rc = cli_main([{str(exported[0])!r}, {str(folder)!r}, '--csv', 'out.csv']); "
        "assert rc == 0; assert 'torch' not in sys.modules, 'torch was imported'; print('ok')"
    )
    done = _run(["-c", code], cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr


def test_wrong_model_file_gets_a_clear_error(exported, tmp_path):
    folder = tmp_path / "images"
    _folder(folder)
    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    done = _run(["-m", "tlcourse", "predict", str(weights), str(folder)], cwd=tmp_path)
    assert done.returncode == 1 and "not a model onnxruntime can load" in done.stderr
    assert "Traceback" not in done.stderr
    done = _run(
        ["-m", "tlcourse", "predict", str(exported[0]), str(tmp_path / "nope")], cwd=tmp_path
    )
    assert done.returncode == 1 and "No folder at" in done.stderr


def test_a_model_without_preprocessing_inside_is_refused(tmp_path):
    path = export.to_onnx(
        tiny_cnn(num_classes=3, width=4), torch.randn(2, 3, 16, 16), tmp_path / "float.onnx"
    )
    with pytest.raises(predict.ModelFileError, match="WithPreprocessing"):
        predict.classify_folder(path, tmp_path)
