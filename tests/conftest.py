"""Test-wide guards and reports.

- Every test runs with the network blocked: opening a connection to anything but this machine
  fails the test with a clear message.
- The course cache goes to a temporary folder unless TLCOURSE_HOME is already set.
(Notebook timing lives in the top-level conftest.py, which also sees notebooks/ and solutions/.)
"""

from __future__ import annotations

import os
import socket

import pytest

LOOPBACK = ("localhost", "::1", "0.0.0.0")


def _is_local(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths
        return True
    host = str(address[0])
    return host in LOOPBACK or host.startswith("127.")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any test that opens a connection off this machine."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if not _is_local(address):
            pytest.fail(
                f"test tried to open a network connection to {address}; tests must run offline"
            )
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, a: guarded(self, a) or 0)


@pytest.fixture(autouse=True, scope="session")
def course_home(tmp_path_factory):
    """A private course cache for the test session (unless TLCOURSE_HOME is set)."""
    import matplotlib

    matplotlib.use("Agg")
    if os.environ.get("TLCOURSE_HOME"):
        yield os.environ["TLCOURSE_HOME"]
        return
    home = tmp_path_factory.mktemp("tlcourse-home")
    os.environ["TLCOURSE_HOME"] = str(home)
    yield str(home)
    os.environ.pop("TLCOURSE_HOME", None)
