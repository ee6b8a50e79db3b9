"""The capstone project: a new target (Georgian letters), its data maker and its project grader.

Data (``make``): 18 Mkhedruli letters chosen so that no two share a shape (the mean rendered-mask
correlation of every pair is below 0.9), rendered by :mod:`tlcourse.datasets.glyphs` from a seed.
``DIR/student/`` holds ``train/`` and ``val/`` as ImageFolder trees (10 and 20 images per class)
and ``test/<id>.png`` with no labels (30 per class, shuffled, ids say nothing); the labels go to
``DIR/instructor/test_labels.csv`` (``id,label``). The course's practice copy uses the public
:data:`PRACTICE_SEED`; an instructor makes the graded copy with a secret one:
``python -m tlcourse capstone make --seed S --out DIR``.

Grader (``grade``): a submission is a folder with ``predictions.csv`` (``id,label``),
``model.onnx`` and ``report.md``. Accuracy of ``predictions.csv`` on the hidden labels earns the
points of every threshold in :data:`ACCURACY_THRESHOLDS` it reaches; the grader runs
``model.onnx`` itself on the test images (onnxruntime, :mod:`tlcourse.predict`) for the export
points (:data:`EXPORT_POINTS`: it loads as a tlcourse classifier of these classes and clears the
lowest threshold on its own; size within :data:`SIZE_BUDGET_MB`; one-image latency on one CPU
thread within :data:`LATENCY_BUDGET_MS`); ``report.md`` is left for the instructor
(:data:`REPORT_POINTS`, blank). Each part fails alone: a broken model costs only the export
points, a missing predictions file only the accuracy points. Rows go to a gradebook CSV whose
cells cannot run as spreadsheet formulas (:mod:`tlcourse.grading.gradebook`). This module does
not import torch.

Introduced in notebooks/14_capstone.ipynb.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import time
import zlib
from pathlib import Path

import numpy as np

from tlcourse.grading.gradebook import Report, Row, write_gradebook

# class folder name -> letter (Georgian Mkhedruli, transliterated names without apostrophes)
CHARS: dict[str, str] = {
    "ani": "ა", "bani": "ბ", "gani": "გ", "doni": "დ", "kani": "კ", "lasi": "ლ", "oni": "ო",
    "pari": "პ", "sani": "ს", "tari": "ტ", "uni": "უ", "phari": "ფ", "khani": "ქ", "qari": "ყ",
    "dzili": "ძ", "tsili": "წ", "chari": "ჭ", "jani": "ჯ",
}  # fmt: skip
CLASSES = sorted(CHARS)
PER_CLASS = {"train": 10, "val": 20, "test": 30}
PRACTICE_SEED = 14  # public: the course's practice copy (the instructor grades with a secret seed)
# (accuracy on the hidden test labels, points for reaching it); points add up.
ACCURACY_THRESHOLDS = ((0.70, 2), (0.80, 2), (0.90, 2))
SIZE_BUDGET_MB = 2.0
LATENCY_BUDGET_MS = 10.0  # median, one image, one onnxruntime CPU thread
EXPORT_POINTS = {"onnx-runs": 2, "onnx-size": 1, "onnx-latency": 1}
REPORT_POINTS = 4
AGREEMENT_FLAG = 0.95  # the model and predictions.csv agree on fewer images: flagged for a look


def rubric() -> str:
    """The rubric as plain text, printed from the constants above."""
    steps = ", ".join(f">= {100 * t:.0f} % -> +{p}" for t, p in ACCURACY_THRESHOLDS)
    return "\n".join(
        [
            f"accuracy of predictions.csv on the hidden test labels ({sum(p for _, p in ACCURACY_THRESHOLDS)} points): {steps}",
            f"onnx-runs ({EXPORT_POINTS['onnx-runs']}): model.onnx loads in onnxruntime, takes uint8 RGB "
            f"(N, 3, H, W), names the {len(CLASSES)} classes, and reaches {100 * ACCURACY_THRESHOLDS[0][0]:.0f} % "
            "when the grader runs it on the test images",
            f"onnx-size ({EXPORT_POINTS['onnx-size']}): file <= {SIZE_BUDGET_MB} MB (only with the onnx-runs points)",
            f"onnx-latency ({EXPORT_POINTS['onnx-latency']}): median <= {LATENCY_BUDGET_MS} ms for one "
            "image on one CPU thread (only with the onnx-runs points)",
            f"report ({REPORT_POINTS}): report.md, graded by the instructor",
        ]
    )


# --- the data ----------------------------------------------------------------------------


def _render(seed: int) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Every split's ``(class, image (32, 32, 3) uint8)`` pairs, a pure function of ``seed``."""
    from tlcourse.datasets.glyphs import render

    out: dict[str, list[tuple[str, np.ndarray]]] = {}
    for s, (split, count) in enumerate(PER_CLASS.items()):
        out[split] = []
        for k, name in enumerate(CLASSES):
            rng = np.random.default_rng([seed, zlib.crc32(b"capstone"), s, k])
            out[split] += [(name, render(CHARS[name], rng)) for _ in range(count)]
    return out


def make(seed: int, out: str | Path) -> Path:
    """Write the capstone data for ``seed`` under ``out`` (``student/``, ``instructor/``).

    The test images are shuffled by ``seed`` and named ``t0000.png`` ...; their labels are only
    in ``instructor/test_labels.csv``. Refuses to overwrite an existing ``out``. Returns ``out``.
    """
    from PIL import Image

    from tlcourse.atomic import build_atomically

    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose a new folder (the data is never overwritten).")

    def build(tmp: Path) -> None:
        data = _render(seed)
        for split in ("train", "val"):
            for i, (name, image) in enumerate(data[split]):
                folder = tmp / "student" / split / name
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"{i:04d}.png", compress_level=1)
        order = np.random.default_rng([seed, 1]).permutation(len(data["test"]))
        (tmp / "student" / "test").mkdir(parents=True)
        (tmp / "instructor").mkdir()
        rows = []
        for n, i in enumerate(order):
            name, image = data["test"][i]
            Image.fromarray(image).save(
                tmp / "student" / "test" / f"t{n:04d}.png", compress_level=1
            )
            rows.append((f"t{n:04d}", name))
        _write_pairs(tmp / "instructor" / "test_labels.csv", rows)

    return build_atomically(out, build)


def practice(root: str | Path | None = None) -> Path:
    """The practice copy (:data:`PRACTICE_SEED`), made once under the cache; returns its folder.

    Its ``instructor/test_labels.csv`` is public (the seed is): use it only to try the grader.
    """
    from tlcourse.paths import cache_dir

    root = Path(root) if root is not None else cache_dir("data") / f"capstone-{PRACTICE_SEED}"
    return (
        root if (root / "instructor" / "test_labels.csv").is_file() else make(PRACTICE_SEED, root)
    )


def load(student: str | Path, split: str):
    """``train`` or ``val`` of a student folder as a TensorImageDataset (uint8 ``(N, 3, 32, 32)``)."""
    import torch

    from tlcourse.datasets.imagefolder import TensorImageDataset, check_image_folder

    if split not in ("train", "val"):
        raise ValueError(
            f"split must be 'train' or 'val'; the test images have no labels: use test_images(). Got {split!r}."
        )
    classes = check_image_folder(student, (split,))
    files = [
        (p, k)
        for k, c in enumerate(classes)
        for p in sorted((Path(student) / split / c).glob("*.png"))
    ]
    images = torch.from_numpy(np.stack([_read(p) for p, _ in files]))
    return TensorImageDataset(images, torch.tensor([k for _, k in files]), classes)


def test_images(student: str | Path) -> tuple[list[str], np.ndarray]:
    """The unlabelled test images of a student folder: ``(ids, images (N, 3, 32, 32) uint8)``."""
    files = sorted((Path(student) / "test").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"No test images in {Path(student) / 'test'}; run capstone make.")
    return [p.stem for p in files], np.stack([_read(p) for p in files])


def _read(path: Path) -> np.ndarray:
    from tlcourse.predict import read_image

    return read_image(path, (32, 32))


def _write_pairs(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "label"])
        writer.writerows(rows)


def read_pairs(path: str | Path) -> dict[str, str]:
    """An ``id,label`` CSV as a dict; ``ValueError`` naming the fix when it is not one."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"id", "label"} <= set(reader.fieldnames):
            raise ValueError(
                f"{Path(path).name} needs a header row 'id,label'; found {reader.fieldnames}."
            )
        pairs: dict[str, str] = {}
        for row in reader:
            pairs.setdefault((row["id"] or "").strip(), (row["label"] or "").strip())
    return pairs


def reference_recipe(student: str | Path, seed: int = 0):
    """The reference model: glyphnet-s, head 2 epochs, then all layers 8 epochs with L2-SP.

    Trained on ``train`` + ``val`` of ``student``. Validation chose the backbone; the recipe
    (fine-tuning with L2-SP, refit on train + val) is a bet validation did not test, where the
    linear probe led (see solutions/14_capstone.ipynb). Returns the :class:`tlcourse.nets.Classifier` in eval mode;
    it takes images normalised with the glyphnet mean and std, ``(N, 3, 32, 32)`` float.
    """
    import torch
    from torch.utils.data import ConcatDataset, DataLoader

    from tlcourse import engine, recipes, regularize, zoo
    from tlcourse.augment import for_backbone
    from tlcourse.repro import seed_everything
    from tlcourse.surgery import freeze, unfreeze

    seed_everything(seed)
    parts = [load(student, s) for s in ("train", "val")]
    for part in parts:
        part.transform = for_backbone(zoo.entry("glyphnet-s"))
    gen = torch.Generator().manual_seed(seed)
    batches = DataLoader(ConcatDataset(parts), batch_size=32, shuffle=True, generator=gen)
    model = zoo.load("glyphnet-s", len(CLASSES))
    freeze(model.backbone)
    engine.fit(model, batches, epochs=2, lr=3e-3, progress=False)
    unfreeze(model)
    loss = regularize.L2SPLoss(model, alpha=0.01, beta=0.01)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0)
    schedule = recipes.one_cycle(8, len(batches))
    engine.fit(
        model, batches, epochs=8, optimizer=opt, loss_fn=loss, callbacks=[schedule], progress=False
    )
    return model.eval()


# --- the grader --------------------------------------------------------------------------


def accuracy_points(accuracy: float) -> int:
    """Points earned by ``accuracy``: the sum over the thresholds it reaches."""
    return sum(p for t, p in ACCURACY_THRESHOLDS if accuracy >= t)


def _model_predictions(model: Path, images: Path, ids: list[str]) -> tuple[dict[str, str], float]:
    """Run ``model`` on the test images: ``({id: label}, median ms for one image)``."""
    from tlcourse.predict import (
        ModelFileError,
        classify_folder,
        load_session,
        model_info,
        read_image,
    )

    session = load_session(model)
    classes, size = model_info(session)
    if sorted(classes) != CLASSES:
        raise ModelFileError(
            f"the model's classes are not the capstone's {len(CLASSES)} classes ({len(classes)} found)"
        )
    labels = {Path(r.file).stem: r.label for r in classify_folder(model, images) if not r.error}
    one = {session.get_inputs()[0].name: read_image(images / f"{ids[0]}.png", size)[None]}
    for _ in range(3):
        session.run(None, one)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        session.run(None, one)
        times.append(time.perf_counter() - start)
    return labels, 1000 * statistics.median(times)


def grade_submission(folder: str | Path, labels: dict[str, str], images: str | Path) -> Report:
    """Score one submission folder against the hidden ``labels`` ({id: class}); one Report."""
    folder, images = Path(folder), Path(images)
    report = Report(folder.name)
    ids = sorted(labels)
    a_max = sum(p for _, p in ACCURACY_THRESHOLDS)
    predicted: dict[str, str] | None = None
    try:
        predicted = read_pairs(folder / "predictions.csv")
        acc = sum(predicted.get(i) == labels[i] for i in ids) / len(ids)
        missing = sum(i not in predicted for i in ids)
        note = f"; {missing} test ids missing" if missing else ""
        report.rows.append(
            Row(
                folder.name,
                "accuracy",
                accuracy_points(acc),
                a_max,
                f"accuracy {acc:.3f} on {len(ids)} test images{note}",
            )
        )
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as err:
        report.rows.append(
            Row(folder.name, "accuracy", 0, a_max, f"no usable predictions.csv ({err})")
        )
    report.rows += _export_rows(folder, labels, images, predicted)
    text = folder / "report.md"
    words = len(text.read_text(encoding="utf-8", errors="replace").split()) if text.is_file() else 0
    message = f"report.md: {words} words, grade by hand" if text.is_file() else "no report.md"
    report.rows.append(Row(folder.name, "report", "", REPORT_POINTS, message))
    return report


def _export_rows(folder: Path, labels: dict, images: Path, predicted: dict | None) -> list[Row]:
    from tlcourse.predict import ModelFileError

    student, model, ids = folder.name, folder / "model.onnx", sorted(labels)
    try:
        ran, ms = _model_predictions(model, images, ids)
    except Exception as err:  # any failure of a student's model (onnxruntime's errors, e.g. a
        # fixed batch size, are not RuntimeError) costs the export points, never the whole grading
        kind = "" if isinstance(err, ModelFileError) else f"{type(err).__name__}: "
        first = (str(err).strip().splitlines() or [""])[0][:300]
        why = f"model.onnx did not run: {kind}{first}"
        return [Row(student, q, 0, p, why) for q, p in EXPORT_POINTS.items()]
    acc = sum(ran.get(i) == labels[i] for i in ids) / len(ids)
    ok = acc >= ACCURACY_THRESHOLDS[0][0]
    message = f"the grader ran model.onnx: accuracy {acc:.3f}"
    if predicted is not None:
        agree = sum(ran.get(i) == predicted.get(i) for i in ids) / len(ids)
        flag = "CHECK: " if agree < AGREEMENT_FLAG else ""
        message = f"{flag}{message}; agrees with predictions.csv on {100 * agree:.1f} %"
    mb = model.stat().st_size / 1e6
    size_ok, fast = ok and mb <= SIZE_BUDGET_MB, ok and ms <= LATENCY_BUDGET_MS
    gate = "" if ok else " (needs onnx-runs)"
    return [
        Row(
            student,
            "onnx-runs",
            EXPORT_POINTS["onnx-runs"] * ok,
            EXPORT_POINTS["onnx-runs"],
            message,
        ),
        Row(
            student,
            "onnx-size",
            EXPORT_POINTS["onnx-size"] * size_ok,
            EXPORT_POINTS["onnx-size"],
            f"{mb:.2f} MB (budget {SIZE_BUDGET_MB} MB){gate}",
        ),
        Row(
            student,
            "onnx-latency",
            EXPORT_POINTS["onnx-latency"] * fast,
            EXPORT_POINTS["onnx-latency"],
            f"{ms:.2f} ms per image (budget {LATENCY_BUDGET_MS} ms){gate}",
        ),
    ]


def grade(
    submissions: str | Path, labels: str | Path, out: str | Path, images: str | Path | None = None
) -> list[Report]:
    """Grade every sub-folder of ``submissions``; write the gradebook CSV ``out``.

    ``images`` defaults to ``student/test`` beside the labels' ``instructor/`` folder.
    """
    labels = Path(labels)
    images = Path(images) if images else labels.resolve().parent.parent / "student" / "test"
    truth = read_pairs(labels)
    folders = sorted(
        p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not folders:
        raise FileNotFoundError(f"No submission folders in {submissions}: one folder per student.")
    reports = [grade_submission(f, truth, images) for f in folders]
    write_gradebook(reports, Path(out))
    return reports


def cli_main(argv: list[str]) -> int:
    """``python -m tlcourse capstone make --seed S --out DIR`` | ``grade SUBS --labels CSV --out CSV``."""
    parser = argparse.ArgumentParser(
        prog="python -m tlcourse capstone", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="write DIR/student (for learners) and DIR/instructor (labels)")
    mk.add_argument(
        "--seed",
        type=int,
        required=True,
        help=f"secret for grading; {PRACTICE_SEED} is the public practice copy",
    )
    mk.add_argument("--out", required=True, help="a new folder")
    gr = sub.add_parser("grade", help="grade a folder of submission folders into a gradebook CSV")
    gr.add_argument(
        "submissions", help="one folder per student: predictions.csv, model.onnx, report.md"
    )
    gr.add_argument("--labels", required=True, help="instructor/test_labels.csv")
    gr.add_argument("--images", help="the test images (default: student/test beside instructor/)")
    gr.add_argument(
        "--out", default="capstone_grades.csv", help="gradebook CSV (default: %(default)s)"
    )
    sub.add_parser("rubric", help="print the rubric")
    args = parser.parse_args(argv)
    if args.command == "rubric":
        print(rubric())
    elif args.command == "make":
        out = make(args.seed, args.out)
        print(f"Wrote {out}/student (give it to the class) and {out}/instructor (keep it).")
    else:
        reports = grade(args.submissions, args.labels, args.out, args.images)
        for r in reports:
            print(f"{r.student}: {r.total} auto points (+ report, by hand)")
        print(f"Wrote {args.out}")
    return 0
