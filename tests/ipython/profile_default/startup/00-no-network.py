# Loaded by every IPython kernel that the test run starts (IPYTHONDIR=tests/ipython):
# refuses any connection that leaves the machine, so a notebook that downloads fails loudly.
import socket as _socket

_connect = _socket.socket.connect


def _guarded_connect(self, address):
    host = address[0] if isinstance(address, tuple) else None
    if host is not None and not (host in ("localhost", "::1") or str(host).startswith("127.")):
        raise OSError(
            f"Network access to {address} is blocked in the test run (quick profile is offline)."
        )
    return _connect(self, address)


_socket.socket.connect = _guarded_connect
