"""Hostile submissions for the grader's tests, built from the chapter-00 notebooks.

Each builder takes the solution and the exercise notebook (nbformat objects) and a ``Context``
(paths the attacker aims at) and returns the hostile notebook; ``EXPECTED[name]`` gives the
points it must get per question. Full marks of chapter 00: 00.1=1, 00.2=2, 00.3=2, 00.4=1, 00.5=1.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell

FULL = {"00.1": 1, "00.2": 2, "00.3": 2, "00.4": 1, "00.5": 1}
ZERO = dict.fromkeys(FULL, 0)


@dataclass(frozen=True)
class Context:
    """What a vandal aims at: a file beside the submissions, the submissions folder, the pytest pid."""

    canary: str
    submissions: str
    grader_pid: int
    package_file: str
    solutions: str = ""  # the instructor's solutions/ folder (an attacker may guess it)


def _replace_function(nb, name: str, source: str):
    for cell in nb.cells:
        if cell.cell_type == "code" and f"def {name}(" in cell.source:
            cell.source = source
            return nb
    raise AssertionError(f"no cell defines {name}")


def _insert(nb, source: str, position: int = 2):
    nb.cells.insert(position, new_code_cell(source))
    return nb


def chaos_cells(solution, exercise, ctx: Context):
    """Correct functions, surrounded by top-level cells that loop, ignore SIGINT, crash the
    kernel, exit, and allocate far beyond the memory limit: every question keeps its points."""
    nb = copy.deepcopy(solution)
    _insert(nb, "while True:\n    pass", 4)
    _insert(
        nb, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", 6
    )
    _insert(nb, "import os\nos._exit(3)", 8)
    _insert(nb, "import sys\nsys.exit(0)", 10)
    _insert(nb, "exit()", 12)
    _insert(nb, "big = bytearray(8 * 2**30)", 14)
    return nb


def chaos_functions(solution, exercise, ctx: Context):
    """00.1 right; 00.2 kills the kernel, 00.3 loops forever, 00.4 allocates 6 GB, 00.5 calls
    sys.exit: only those four questions lose their points."""
    nb = copy.deepcopy(solution)
    _replace_function(
        nb, "freeze_backbone", "def freeze_backbone(model):\n    import os\n    os._exit(1)"
    )
    _replace_function(
        nb, "swap_head", "def swap_head(model, num_classes):\n    while True:\n        pass"
    )
    _replace_function(
        nb,
        "normalize",
        (
            "import torch\n"
            "def normalize(images, mean, std):\n"
            "    scratch = torch.empty(6 * 2**30, dtype=torch.uint8)\n"
            "    m = torch.tensor(mean).view(1, -1, 1, 1)\n"
            "    return (images - m) / torch.tensor(std).view(1, -1, 1, 1)"
        ),
    )
    _replace_function(
        nb, "accuracy", "def accuracy(logits, labels):\n    import sys\n    sys.exit(0)"
    )
    return nb


def vandal(solution, exercise, ctx: Context):
    """Correct functions plus a cell that attacks everything around it (each attack guarded):
    overwrite / delete a file beside the submissions, delete the other submissions, touch the
    tlcourse package, kill the grader. It keeps full marks; nothing outside it changes."""
    nb = copy.deepcopy(solution)
    _insert(
        nb,
        f"""
import os, shutil, signal
def attempt(f):
    try:
        f()
    except Exception as err:
        print("blocked:", err)
attempt(lambda: open({ctx.canary!r}, "w").write("vandalised"))
attempt(lambda: os.remove({ctx.canary!r}))
attempt(lambda: shutil.rmtree({ctx.submissions!r}))
attempt(lambda: os.utime({ctx.package_file!r}, (0, 0)))
attempt(lambda: os.system("mount -o remount,rw / && touch {ctx.canary}.new"))
attempt(lambda: os.kill({ctx.grader_pid}, signal.SIGKILL))
""",
        3,
    )
    return nb


def self_destruct(solution, exercise, ctx: Context):
    """Correct functions, then deletes its own scratch folder (cases and results included):
    it loses its own points, nobody else's."""
    nb = copy.deepcopy(solution)
    _insert(
        nb,
        "import shutil, pathlib\nshutil.rmtree(pathlib.Path.cwd().parent, ignore_errors=True)",
        len(nb.cells),
    )
    return nb


TAMPER = """
import glob, json, os, builtins, torch
import tlcourse.grading, tlcourse.grading.questions as questions, tlcourse.grading.wire as wire

# 1. redefine and patch the checks
def check(*args, **kwargs):
    print("PASSED 00.1 count trainable parameters: all 3 cases match (1 point).")
tlcourse.grading.check = check
questions.same = lambda got, expected, *a, **k: None

# 2. results that claim success, for every question, wherever results might go
def fake_harvest(io_dir, qid, name, namespace, observer=None):
    fake = {"outcomes": [{"ok": True, "value": 1}] * 3, "origin": ""}
    wire.dump(fake, __import__("pathlib").Path(io_dir) / f"result_{qid}")
wire.harvest = fake_harvest
for folder in glob.glob(os.path.join(os.getcwd(), "..", "io-*")):
    for qid in ("00.1", "00.2", "00.3", "00.4", "00.5"):
        fake_harvest(folder, qid, None, None)

# 3. objects that equal everything
class Sly(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
class SlyTensor(torch.Tensor):
    def __eq__(self, other): return True
def count_trainable(model): return Sly(0)
def accuracy(logits, labels): return Sly(0)
def normalize(images, mean, std): return torch.zeros(1).as_subclass(SlyTensor)

# 4. fake grader output
print("student,question,points,max,message")
print("tamper,00.1,1,1,passed all 3 cases")
print("SCORE: 7/7")
open("grades.csv", "w").write("tamper,00.1,1,1,passed\\n")
"""

COPYCAT = """
try:  # the package holds no reference code any more: nothing to import
    from tlcourse.grading.sets import ch00
    count_trainable = lambda m: ch00.ref_count_trainable(m)
    freeze_backbone = lambda m: ch00.ref_freeze_backbone(m)
    swap_head = lambda m, n: ch00.ref_swap_head(m, n)
    normalize = lambda x, m, s: ch00.ref_normalize(x, m, s)
    accuracy = lambda l, y: ch00.ref_accuracy(l, y)
except ImportError as err:
    print("no reference:", err)
"""


def tamper_blank(solution, exercise, ctx: Context):
    """The untouched exercise plus every trick that needs no solving: zero everywhere."""
    nb = copy.deepcopy(exercise)
    nb.cells.append(new_code_cell(TAMPER))
    nb.cells.append(new_code_cell('check("00.1", count_trainable)'))
    return nb


def copycat(solution, exercise, ctx: Context):
    """The untouched exercise that imports the package's reference implementations."""
    nb = copy.deepcopy(exercise)
    nb.cells.append(new_code_cell(COPYCAT))
    return nb


def fake_output(solution, exercise, ctx: Context):
    """A wrong 00.1 that prints PASS lines and a fake gradebook: 00.1 zero, the rest full."""
    nb = copy.deepcopy(solution)
    _replace_function(
        nb,
        "count_trainable",
        (
            "def count_trainable(model):\n"
            "    print('PASSED 00.1 count trainable parameters: all 3 cases match (1 point).')\n"
            "    print('fake_output,00.1,1,1,passed all 3 cases')\n"
            "    return 0"
        ),
    )
    return nb


# ------------------------------------------------- copying the references without an import
# Every cell below reaches what it needs through objects the exercise already has (the
# ``check`` function's module globals, ``__import__``, ``open``, ``exec``): no import statement.

STEAL_PRELUDE = """
_g = check.__globals__  # tlcourse.grading.checks: os, torch, recorded, ... without an import
_os, _json = _g["os"], _g["recorded"].wire.json
_NAMES = ("count_trainable", "freeze_backbone", "swap_head", "normalize", "accuracy")
_stolen = {}

def _take(namespace):
    for name in _NAMES:
        for key in (name, "ref_" + name):
            if callable(namespace.get(key)):
                _stolen.setdefault(name, namespace[key])

def _exec_text(text):
    namespace = {}
    try:
        exec(text, namespace)
    except BaseException:
        pass
    _take(namespace)

_ast = __import__("ast")

# Only the imports and function definitions of a cell: an attacker wants the answers, and what
# else a notebook under /tmp does (another hostile submission deleting its folder, a cell that
# loops or exits) must not run here, where the control test has no sandbox.
def _definitions(text):
    try:
        tree = _ast.parse(text)
    except BaseException:
        return ""
    kept = (_ast.Import, _ast.ImportFrom, _ast.FunctionDef)
    return _ast.unparse(_ast.Module([n for n in tree.body if isinstance(n, kept)], []))

def _exec_notebook(path):
    try:
        cells = _json.loads(open(path).read())["cells"]
    except BaseException:
        return
    for cell in cells:
        source = "".join(cell["source"]) if cell.get("cell_type") == "code" else ""
        if any("def " + name + "(" in source for name in _NAMES):
            _exec_text(_definitions(source))
"""

STEAL_FINISH = """
print("stolen:", sorted(_stolen))
for _name, _function in _stolen.items():
    globals()[_name] = _function
"""

SOLUTIONS_FROM_DISK = """
_repo = _os.path.dirname(_os.path.dirname(_os.path.dirname(_g["recorded"].__file__)))
for _path in (
    {solutions!r} + "/00_warmup.ipynb",
    _repo + "/solutions/00_warmup.ipynb",
    {submissions!r} + "/solution.ipynb",
):
    _exec_notebook(_path)
for _top in ("/tmp", {submissions!r}):  # any notebook with the answers in it
    for _here, _dirs, _files in _os.walk(_top):
        _dirs[:] = [] if len(_stolen) == 5 else [d for d in _dirs if "venv" not in d]
        for _file in _files:
            if _file.endswith(".ipynb") and len(_stolen) < 5:
                _exec_notebook(_os.path.join(_here, _file))
# the old package versions in the git history held the references
_log = _os.popen("git -C " + _repo + " log --all --format=%H -- tlcourse/grading/sets/ch00.py")
for _commit in _log.read().split()[:4]:
    _exec_text(_os.popen("git -C " + _repo + " show " + _commit + ":tlcourse/grading/sets/ch00.py").read())
"""

IMPORTLIB_TRICKS = """
_importlib = __import__("importlib")
for _module in ("tlcourse.grading.sets.ch00", "tlcourse.grading.questions", "tlcourse.grading"):
    try:
        _take(vars(_importlib.import_module(_module)))
    except BaseException:
        pass
_references = _importlib.import_module("tlcourse.grading.references")
_repo = _os.path.dirname(_os.path.dirname(_os.path.dirname(_g["recorded"].__file__)))
for _path in ({solutions!r} + "/00_warmup.ipynb", _repo + "/solutions/00_warmup.ipynb"):
    try:
        _take(_references.load_references(_g["recorded"].Path(_path)))
    except BaseException as err:
        print("no references:", type(err).__name__)
for _question in _importlib.import_module("tlcourse.grading.sets.ch00").QUESTIONS:
    for _field in ("reference", "ref", "solution", "answer"):
        if callable(getattr(_question, _field, None)):
            _stolen.setdefault(getattr(_question, "function", ""), getattr(_question, _field))
"""

PACKAGE_READER = """
_package = _os.path.dirname(_os.path.dirname(_g["recorded"].__file__))
for _here, _dirs, _files in _os.walk(_package):
    for _file in _files:
        if _file.endswith(".py"):
            _text = open(_os.path.join(_here, _file)).read()
            if any("def ref_" + n in _text for n in _NAMES):  # where the references used to be
                _exec_text(_text)
"""

REPLAY = """
_recorded = _g["recorded"].load("00")  # the public results shipped with the exercises

def _replay(qid):
    state = {"i": 0}
    def function(*args):
        answers = _recorded[qid]
        value = answers[state["i"] % len(answers)]
        state["i"] += 1
        return value
    return function

for _qid, _name in zip(("00.1", "00.2", "00.3", "00.4", "00.5"), _NAMES):
    _stolen[_name] = _replay(_qid)
"""


def _steal(exercise, body: str):
    nb = copy.deepcopy(exercise)
    nb.cells.append(new_code_cell(STEAL_PRELUDE + body + STEAL_FINISH))
    return nb


def solutions_from_disk(solution, exercise, ctx: Context):
    """The untouched exercise that reads the solution notebooks from disk (the repository, the
    submissions folder, anything under /tmp, the git history of the old package): zero."""
    return _steal(exercise, SOLUTIONS_FROM_DISK.format(**vars(ctx)))


def importlib_tricks(solution, exercise, ctx: Context):
    """``__import__`` / ``importlib`` on the question sets and the package's own reference
    loader pointed at solutions/: zero."""
    return _steal(exercise, IMPORTLIB_TRICKS.format(**vars(ctx)))


def package_reader(solution, exercise, ctx: Context):
    """Reads every installed tlcourse source file and executes any that defines a reference
    (``def ref_<function>``, the old shape): zero (the package holds no references). Calling
    the package's own teaching functions is another matter: tests/test_grading_answers.py."""
    return _steal(exercise, PACKAGE_READER)


def replay_public(solution, exercise, ctx: Context):
    """Returns the recorded public results (exercises/checks/00.json) one after another: the
    secret cases differ, so zero."""
    return _steal(exercise, REPLAY)


STEALERS = (solutions_from_disk, importlib_tricks, package_reader, replay_public)


BUILDERS = {
    f.__name__: f
    for f in (
        chaos_cells,
        chaos_functions,
        vandal,
        self_destruct,
        tamper_blank,
        copycat,
        fake_output,
        *STEALERS,
    )
}
EXPECTED = {
    "chaos_cells": FULL,
    "chaos_functions": {**ZERO, "00.1": 1},
    "vandal": FULL,
    "self_destruct": ZERO,
    "tamper_blank": ZERO,
    "copycat": ZERO,
    "fake_output": {**FULL, "00.1": 0},
    **{f.__name__: ZERO for f in STEALERS},
}


def write(nb, path) -> None:
    """Write a submission notebook."""
    nbformat.write(nb, str(path))
