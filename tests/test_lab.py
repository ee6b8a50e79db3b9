"""`make lab` really serves the course: start it headless, fetch the lab page and the
notebook listing over HTTP on localhost, stop it."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, deadline: float) -> bytes:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
def test_make_lab_serves_the_course(tmp_path):
    port, token = free_port(), secrets.token_hex(8)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} --ServerApp.open_browser=False"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(tmp_path),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
    }
    server = subprocess.Popen(
        ["make", "-s", "-o", ".venv/.installed", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.time() + 90
        page = get(f"{base}/lab?token={token}", deadline).decode()
        assert "JupyterLab" in page
        listing = json.loads(get(f"{base}/api/contents/notebooks?token={token}", deadline))
        names = {item["name"] for item in listing["content"]}
        assert "00_welcome.ipynb" in names
        kernels = json.loads(get(f"{base}/api/kernelspecs?token={token}", deadline))
        assert "tlcourse" in kernels["kernelspecs"], "make lab must register the course kernel"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
