"""The deployable predictor: an exported ONNX image classifier over a folder of images.

``python -m tlcourse predict MODEL FOLDER [--csv PATH]`` loads ``MODEL`` (an ``.onnx`` file
written by :func:`tlcourse.export.to_onnx` around :class:`tlcourse.export.WithPreprocessing`)
with onnxruntime, classifies every image under ``FOLDER``, prints a table and writes a CSV.
The forward pass needs onnxruntime, numpy and Pillow only: this module never imports torch.

Each file gets one row. A file that is not a readable image gets an error row and the rest of
the folder is still classified; a model file that is not such a classifier stops with a message
that says what to export instead.

Introduced in notebooks/13_export_and_deployment.ipynb.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlcourse.atomic import atomic_write
from tlcourse.grading.gradebook import neutralise

# Keys of the ONNX metadata_props that tlcourse.export writes and this module reads.
META_CLASSES = "tlcourse.classes"
META_INPUT_SIZE = "tlcourse.input_size"
META_INPUT = "tlcourse.input"


class ModelFileError(ValueError):
    """The model file is missing, not ONNX, or not a tlcourse image classifier."""


@dataclass(frozen=True)
class Row:
    """One file's result: the predicted ``label`` and its ``confidence``, or an ``error``."""

    file: str
    label: str = ""
    confidence: float | None = None
    error: str = ""


def load_session(path: str | os.PathLike, threads: int = 1):
    """An onnxruntime ``InferenceSession`` on the CPU for ``path``; a clear error if it is not ONNX."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"No model file at {path}. Export one with tlcourse.export.to_onnx.")
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3  # errors only
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types for unreadable files
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise ModelFileError(
            f"{path.name} is not a model onnxruntime can load ({first}). Pass the .onnx file "
            "written by tlcourse.export.to_onnx, not a weights file (.safetensors, .pt) or a card."
        ) from err


def model_info(session) -> tuple[list[str], tuple[int, int]]:
    """Class names and ``(H, W)`` of a tlcourse image classifier; ``ModelFileError`` otherwise."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(inputs[0].shape) != 4:
        found = ", ".join(f"{i.name}: {i.type} {i.shape}" for i in inputs)
        raise ModelFileError(
            f"This model takes {found}; the predictor needs one uint8 RGB input (N, 3, H, W) with "
            "the preprocessing inside. Export it wrapped in tlcourse.export.WithPreprocessing."
        )
    meta = session.get_modelmeta().custom_metadata_map
    _, height, width = inputs[0].shape[1:]
    if META_INPUT_SIZE in meta:
        _, height, width = json.loads(meta[META_INPUT_SIZE])
    if not (isinstance(height, int) and isinstance(width, int)):
        raise ModelFileError(
            f"The model does not say its input size; export it with {META_INPUT_SIZE}."
        )
    num_classes = session.get_outputs()[0].shape[-1]
    classes = json.loads(meta[META_CLASSES]) if META_CLASSES in meta else None
    if classes is None:
        classes = [str(i) for i in range(num_classes)] if isinstance(num_classes, int) else []
    return classes, (height, width)


def read_image(path: Path, size: tuple[int, int]) -> np.ndarray:
    """``path`` decoded to RGB, resized to ``size = (H, W)``: uint8 ``(3, H, W)``.

    Raises ``ValueError`` naming the file when it is not an image Pillow can read.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"not a readable image ({type(err).__name__})") from err


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Every non-hidden file under ``folder`` (recursively), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"No folder at {folder}: pass the folder that holds the images.")
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits, numerically stable."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def classify_folder(
    model: str | os.PathLike, folder: str | os.PathLike, *, batch_size: int = 64, threads: int = 1
) -> list[Row]:
    """Classify every file under ``folder`` with the ONNX ``model``; one :class:`Row` per file."""
    session = load_session(model, threads=threads)
    classes, size = model_info(session)
    folder = Path(folder)
    rows: dict[Path, Row] = {}
    good: list[tuple[Path, np.ndarray]] = []
    for path in image_files(folder):
        try:
            good.append((path, read_image(path, size)))
        except ValueError as err:
            rows[path] = Row(str(path.relative_to(folder)), error=str(err))
    name = session.get_inputs()[0].name
    for start in range(0, len(good), batch_size):
        chunk = good[start : start + batch_size]
        probs = softmax(session.run(None, {name: np.stack([a for _, a in chunk])})[0])
        for (path, _), p in zip(chunk, probs, strict=True):
            k = int(p.argmax())
            label = classes[k] if k < len(classes) else str(k)
            rows[path] = Row(str(path.relative_to(folder)), label, float(p[k]))
    return [rows[p] for p in sorted(rows)]


def format_table(rows: list[Row]) -> str:
    """The rows as an aligned plain-text table (file, label, confidence, error)."""
    from tlcourse.suggest import text_table

    body = [
        (r.file, r.label, "" if r.confidence is None else f"{r.confidence:.3f}", r.error)
        for r in rows
    ]
    return text_table(("file", "label", "confidence", "error"), body)


def write_csv(rows: list[Row], path: str | os.PathLike) -> Path:
    """Write the rows to ``path`` as CSV (file, label, confidence, error); return ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["file", "label", "confidence", "error"])
            for r in rows:
                conf = "" if r.confidence is None else f"{r.confidence:.6f}"
                writer.writerow(
                    [neutralise(r.file), neutralise(r.label), conf, neutralise(r.error)]
                )

    return atomic_write(path, write)


def cli_main(argv: list[str]) -> int:
    """``python -m tlcourse predict MODEL FOLDER [--csv PATH] [--batch-size N] [--threads N]``.

    Exit status 0 when the model loaded and the folder was read (error rows included), 1 when the
    model or the folder is unusable, 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tlcourse predict",
        description="Classify every image in a folder with an exported ONNX model.",
    )
    parser.add_argument("model", help="the .onnx file written by tlcourse.export.to_onnx")
    parser.add_argument("folder", help="folder of images (searched recursively)")
    parser.add_argument(
        "--csv", default="predictions.csv", help="where to write the CSV (default: %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="images per onnxruntime call")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime CPU threads")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.threads < 1:
        parser.error("--batch-size and --threads must be at least 1")
    try:
        rows = classify_folder(
            args.model, args.folder, batch_size=args.batch_size, threads=args.threads
        )
    except (ModelFileError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_table(rows) if rows else f"No files in {args.folder}.")
    path = write_csv(rows, args.csv)
    failed = sum(bool(r.error) for r in rows)
    print(f"\n{len(rows) - failed} classified, {failed} could not be read; wrote {path}")
    return 0
