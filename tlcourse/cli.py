"""``python -m tlcourse <command>``: doctor | preflight | data | zoo | release | grade | predict.

Each command lives in its topic module as ``cli_main(argv) -> int``, imported (explicitly, by
the small function below) only when called, so ``python -m tlcourse doctor`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


# Each command's cli_main is imported only when called, so `python -m tlcourse doctor` stays fast.
def _doctor(argv: list[str]) -> int:
    from tlcourse.doctor import cli_main

    return cli_main(argv)


def _data(argv: list[str]) -> int:
    from tlcourse.datasets.catalog import cli_main

    return cli_main(argv)


def _zoo(argv: list[str]) -> int:
    from tlcourse.zoo import cli_main

    return cli_main(argv)


def _release(argv: list[str]) -> int:
    from tlcourse.grading.release import cli_main

    return cli_main(argv)


def _grade(argv: list[str]) -> int:
    from tlcourse.grading.grader import cli_main

    return cli_main(argv)


def _predict(argv: list[str]) -> int:
    from tlcourse.predict import cli_main

    return cli_main(argv)


def _capstone(argv: list[str]) -> int:
    from tlcourse.capstone import cli_main

    return cli_main(argv)


def _preflight(argv: list[str]) -> int:
    from tlcourse.preflight import cli_main

    return cli_main(argv)


COMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "doctor": (_doctor, "check the environment: versions, device, profile, cache, offline assets"),
    "data": (_data, "list, describe or prepare the course datasets"),
    "zoo": (_zoo, "list the pretrained backbones, show a card, build a course backbone"),
    "release": (_release, "regenerate exercises/ from solutions/"),
    "grade": (_grade, "grade a folder of submitted notebooks into a gradebook CSV"),
    "preflight": (_preflight, "before a class: build or verify every dataset and model it needs"),
    "predict": (_predict, "classify a folder of images with an exported ONNX model"),
    "capstone": (_capstone, "make the capstone data (make) or grade project submissions (grade)"),
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
    try:
        return int(COMMANDS[name][0](rest) or 0)
    except (KeyError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 1
