#!/usr/bin/env bash
# Run a command with the network switched off.
# Where we may (root, or unprivileged user namespaces), the command runs in a fresh network
# namespace that has only the loopback interface (Jupyter kernels talk over 127.0.0.1).
# Everywhere, the tests' conftest and the kernels' IPython start-up file refuse any
# non-loopback connection, so a notebook or test that reaches for the internet fails loudly.
set -euo pipefail
export IPYTHONDIR="$(cd "$(dirname "$0")/.." && pwd)/tests/ipython"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TLCOURSE_OFFLINE=1
if unshare --net --map-root-user true 2>/dev/null; then
  exec unshare --net --map-root-user bash -c 'ip link set lo up 2>/dev/null || true; exec "$@"' offline "$@"
fi
echo "note: network namespaces are not available here; relying on the in-process network guard" >&2
exec "$@"
