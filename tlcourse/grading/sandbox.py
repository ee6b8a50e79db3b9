"""Run one submission's code in a throwaway process tree with time, memory and file limits.

Layers, outermost first:

1. ``subprocess.Popen`` in a new session with ``setrlimit``: data segment (``memory_mb``), file
   size, no core dumps; a wall-clock limit kills the whole process group.
2. Where Linux user namespaces work (``unshare`` probe), the run gets private PID, mount and
   network namespaces: no network, it cannot see or signal the grader, every mount except the
   sandbox folder is re-mounted read-only (so it cannot edit ``tlcourse``, the venv, the other
   submissions or the gradebook), and the kernel runs in a nested user namespace so it cannot
   undo those mounts. When the PID namespace's first process dies, the kernel dies.
3. Inside, ``stage2`` starts a Jupyter kernel with nbclient, runs the code cells one at a time
   (a timed-out cell is interrupted; a dead or stuck kernel is restarted and the cells that
   worked are replayed), then asks the kernel to run the learner's functions on the grader's
   cases (:func:`tlcourse.grading.wire.harvest`). Outputs are discarded, never parsed.

``python -m tlcourse.grading.sandbox stage1|stage2 JOB.json`` are internal entry points.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER_ENV = "TLCOURSE_SANDBOX"
MAX_RESTARTS = 6
BOOTSTRAP = (  # run before the cells, with the start-up time limit: torch is imported once here
    "import torch, tlcourse.grading.wire, tlcourse.grading.observers\n"
    "get_ipython().ask_exit = lambda *args, **kwargs: None  # exit() must not end grading"
)
STARTUP_TIMEOUT_S = 120.0
PASS_ENV = ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "TZ")
NAMESPACES = ["--mount", "--pid", "--fork", "--net", "--kill-child", "--mount-proc"]
UNSHARE = ["unshare", "--user", "--map-root-user", *NAMESPACES]


@dataclass(frozen=True)
class Limits:
    """Per-submission limits: wall time of the whole run, of one cell, memory and file size."""

    timeout_s: float = 300.0
    cell_timeout_s: float = 60.0
    memory_mb: int = 4096
    file_mb: int = 256


@dataclass(frozen=True)
class RunOutcome:
    """How the sandbox process ended: exit code (None if killed at the wall limit), seconds."""

    returncode: int | None
    timed_out: bool
    wall_s: float


@functools.cache
def namespaces_available() -> bool:
    """True if ``unshare`` can create user, PID, mount and network namespaces here."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run([*UNSHARE, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _apply_limits(limits: Limits) -> None:
    """``preexec_fn``: resource limits inherited by everything the submission starts."""
    memory = limits.memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * 2**20,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def sandbox_env(root: Path, nonce: str) -> dict[str, str]:
    """A minimal environment: private home, cache and temp folders; offline; quick profile."""
    env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
    for name in ("home", "tmp", "cache", "runtime"):
        (root / name).mkdir(exist_ok=True)
    env.update(
        HOME=str(root / "home"),
        TMPDIR=str(root / "tmp"),
        TLCOURSE_HOME=str(root / "cache"),
        IPYTHONDIR=str(root / "home" / ".ipython"),
        MPLCONFIGDIR=str(root / "home" / ".mpl"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        XDG_CACHE_HOME=str(root / "cache"),
        TLCOURSE_PROFILE="quick",
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONDONTWRITEBYTECODE="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env[MARKER_ENV] = nonce
    return env


def run_job(job_path: Path, root: Path, nonce: str, limits: Limits, isolate: bool) -> RunOutcome:
    """Run ``job_path`` (see :func:`stage2`) in a sandbox rooted at ``root``; always cleans up."""
    stage = "stage1" if isolate else "stage2"
    command = [sys.executable, "-m", "tlcourse.grading.sandbox", stage, str(job_path)]
    command = [*UNSHARE, *command] if isolate else command
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=root,
        env=sandbox_env(root, nonce),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "sandbox.log", "wb"),  # noqa: SIM115
        preexec_fn=functools.partial(_apply_limits, limits),
    )
    try:
        proc.wait(timeout=limits.timeout_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    _kill_group(proc.pid)
    proc.wait()
    kill_marked(nonce)
    code = None if timed_out else proc.returncode
    return RunOutcome(code, timed_out, time.monotonic() - start)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_marked(nonce: str) -> int:
    """Kill every process whose environment carries this sandbox's marker (escaped daemons)."""
    import psutil

    killed = 0
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARKER_ENV) == nonce:
                proc.kill()
                killed += 1
        except (psutil.Error, OSError):
            continue
    return killed


# ----------------------------------------------------------------- inside the sandbox: stage 1


def stage1(job_path: Path) -> None:
    """In the new namespaces: a private ``/tmp`` holding only the sandbox root, hide the job's
    ``hide`` folders (the solution notebooks, the git history, the submissions), make every
    mount read-only except the sandbox root, then
    exec stage 2 in a nested user namespace (which cannot undo the mounts)."""
    job = json.loads(job_path.read_text())
    root = Path(job["root"])
    _mount("--make-rprivate", "/")
    if job.get("private_tmp"):
        code = [Path(sys.prefix), Path(sys.base_prefix), Path(__file__).resolve().parents[2]]
        _private_tmp(Path(job["private_tmp"]), [root, *code])  # Python and tlcourse may be there
    _mount("--bind", str(root), str(root))
    _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", "/dev/shm", check=False)
    for folder in job.get("hide", []):
        _mount("-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", folder, check=False)
    for point in _mount_points():
        if point != str(root) and not point.startswith(("/proc", "/sys", "/dev")):
            _mount("-o", "remount,bind,ro", point, check=False)
    _log("mounts ready")
    nested = ["unshare", "--user", "--map-root-user"]
    os.execvp(
        nested[0],
        [*nested, sys.executable, "-m", "tlcourse.grading.sandbox", "stage2", str(job_path)],
    )


def _private_tmp(tmp: Path, keep: list[Path]) -> None:
    """An empty tmpfs over ``tmp`` (other runs' folders, test copies of solutions vanish), with
    each folder of ``keep`` that lies inside it (the sandbox root; the Python environment and the
    course's code when they were installed under ``tmp``) bound back in place through a file
    descriptor opened before it was covered."""
    if not tmp.is_dir() or tmp.resolve() == Path("/"):
        return
    inside = {p.resolve() for p in keep if tmp.resolve() in p.resolve().parents}
    fds = {p: os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in sorted(inside)}
    try:
        _mount("-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs", str(tmp))
        for path, fd in fds.items():
            path.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{fd}", str(path)],
                check=True,
                capture_output=True,
                pass_fds=(fd,),
            )
    finally:
        for fd in fds.values():
            os.close(fd)


def _mount(*args: str, check: bool = True) -> None:
    subprocess.run(["mount", *args], check=check, capture_output=True)


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split()[4]
        points.append(field.encode().decode("unicode_escape"))
    return points


# ----------------------------------------------------------------- inside the sandbox: stage 2


def stage2(job_path: Path) -> None:
    """Run the job's cells in a kernel, then harvest each question; write ``status.json``.

    The job (written by the grader) has ``cells`` (sources), ``work`` (the kernel's cwd),
    ``io`` (where cases are read and results written), ``questions`` (``[[qid, function]]``)
    and ``cell_timeout``.
    """
    job = json.loads(job_path.read_text())
    status: dict[str, Any] = {"cells": [], "questions": {}, "restarts": 0}
    runner = _Runner(job, status)
    try:
        runner.run()
    finally:
        _write_json(Path(job["io"]) / "status.json", status)
        _log("status written")
        runner.shutdown()
        _log("kernel shut down")


class _Runner:
    """Drives one kernel through the cells and the harvest, restarting it when it dies."""

    def __init__(self, job: dict, status: dict) -> None:
        self.job, self.status = job, status
        self.timeout = float(job["cell_timeout"])
        self.client = None
        self.ok_cells: list[int] = []

    def start(self) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient
        from nbformat.v4 import new_code_cell, new_notebook

        class Quiet(NotebookClient):
            def output(self, outs, msg, display_id, cell_index):  # discard all outputs
                return None

        km = AsyncKernelManager(kernel_name="python3", transport="ipc")
        km.ip = str(Path(self.job["root"]) / "runtime" / "kernel")
        self.client = Quiet(
            new_notebook(cells=[new_code_cell("")]),
            km=km,
            timeout=self.timeout,
            allow_errors=True,
            interrupt_on_timeout=True,
            startup_timeout=STARTUP_TIMEOUT_S,
            shutdown_kernel="immediate",
            error_on_timeout={"ename": "Timeout", "evalue": "cell ran too long"},
            resources={"metadata": {"path": self.job["work"]}},
        )
        self.client.on_cell_executed = self._on_executed
        self.context = self.client.setup_kernel()
        self.context.__enter__()
        self.execute(BOOTSTRAP, timeout=STARTUP_TIMEOUT_S)

    def shutdown(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # the kernel may already be gone
                self.context.__exit__(None, None, None)
            self.client = None

    def _on_executed(self, cell, cell_index, execute_reply) -> None:
        content = (execute_reply or {}).get("content", {})
        self.last = (content.get("status", "error"), content.get("ename"), content.get("evalue"))

    def execute(
        self, source: str, timeout: float | None = None
    ) -> tuple[str, str | None, str | None]:
        """Run one snippet; ``(status, ename, evalue)``; status ``dead`` if the kernel died."""
        from nbclient.exceptions import CellTimeoutError, DeadKernelError
        from nbformat.v4 import new_code_cell

        self.last = ("error", "Unknown", "no reply")
        self.client.timeout = timeout or self.timeout
        try:
            self.client.execute_cell(new_code_cell(source), 0, store_history=False)
        except (DeadKernelError, CellTimeoutError, RuntimeError) as err:
            return ("dead", type(err).__name__, str(err)[:200])
        return self.last

    def alive(self) -> bool:
        """Does the kernel still answer (after a timeout or a crash)?"""
        return self.execute("pass", timeout=min(10.0, self.timeout))[0] == "ok"

    def process_alive(self) -> bool:
        """Is the kernel process still running (cheap, no message)?"""
        from jupyter_core.utils import run_sync

        return self.client is not None and bool(run_sync(self.client.km.is_alive)())

    def run(self) -> None:
        start = time.monotonic()
        self.start()
        self.status["kernel_start_s"] = round(time.monotonic() - start, 2)
        for index, source in enumerate(self.job["cells"]):
            self._run_cell(index, source)
        for qid, function, observer in self.job["questions"]:
            self._harvest(qid, function, observer)

    def _run_cell(self, index: int, source: str) -> None:
        if not self.process_alive():
            self._restart()
        start = time.monotonic()
        state, ename, evalue = self.execute(source)
        self.status["cells"].append(
            {
                "index": index,
                "status": state,
                "ename": ename,
                "evalue": (evalue or "")[:200],
                "seconds": round(time.monotonic() - start, 2),
            }
        )
        _write_json(Path(self.job["io"]) / "status.json", self.status)
        if state == "ok":
            self.ok_cells.append(index)
        elif state == "dead" or not self.alive():
            self._restart()

    def _restart(self) -> None:
        """Start a fresh kernel and replay the cells that ran fine; a replayed cell that kills
        the kernel again is dropped (e.g. one that ends the kernel after returning)."""
        while True:
            _log("restarting the kernel")
            self.status["restarts"] += 1
            if self.status["restarts"] > MAX_RESTARTS:
                raise RuntimeError("kernel died too often")
            self.shutdown()
            self.start()
            replay = [(i, self.execute(self.job["cells"][i])[0]) for i in self.ok_cells]
            killers = [i for i, state in replay if state == "dead"][:1]
            if not killers and self.process_alive():
                return
            self.ok_cells.remove(killers[0] if killers else self.ok_cells[-1])

    def _harvest(self, qid: str, function: str, observer: str) -> None:
        code = (
            f"from tlcourse.grading.wire import harvest as _tlc_harvest\n"
            f"_tlc_harvest({self.job['io']!r}, {qid!r}, {function!r}, globals(), {observer!r})"
        )
        if not self.process_alive():
            self._restart()
        start = time.monotonic()
        state, ename, evalue = self.execute(code)
        self.status["questions"][qid] = {
            "status": state,
            "ename": ename,
            "evalue": (evalue or "")[:200],
            "seconds": round(time.monotonic() - start, 2),
        }
        _write_json(Path(self.job["io"]) / "status.json", self.status)
        if state == "dead" or (state != "ok" and not self.alive()):
            self._restart()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _log(message: str) -> None:
    """A timestamped line in ``sandbox.log`` (stderr), for the instructor's debugging."""
    print(f"{time.time():.2f} {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    _log(f"start {sys.argv[1]}")
    {"stage1": stage1, "stage2": stage2}[sys.argv[1]](Path(sys.argv[2]))
