"""``python -m tlcourse <command>``: doctor | data | zoo | release | grade.

Each command lives in its topic module as ``cli_main(argv) -> int`` and is imported only
when called, so ``python -m tlcourse doctor`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "doctor": (
        "tlcourse.doctor",
        "check the environment: versions, device, profile, cache, offline assets",
    ),
    "data": ("tlcourse.datasets.catalog", "list, describe or prepare the course datasets"),
    "zoo": ("tlcourse.zoo", "list the pretrained backbones, show a card, build a course backbone"),
    "release": ("tlcourse.grading.release", "regenerate exercises/ from solutions/"),
    "grade": (
        "tlcourse.grading.grader",
        "grade a folder of submitted notebooks into a gradebook CSV",
    ),
    "predict": ("tlcourse.predict", "classify a folder of images with an exported ONNX model"),
}


def usage() -> str:
    """The top-level help text."""
    lines = ["usage: python -m tlcourse <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `python -m tlcourse <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the command's ``cli_main``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"Unknown command {name!r}.\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.cli_main(rest) or 0)
    except (KeyError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 1
