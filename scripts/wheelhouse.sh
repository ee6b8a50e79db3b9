#!/usr/bin/env bash
# Offline classrooms: make a wheelhouse from the lock on a machine with the registry, then install
# from it on machines without one.
#
#   bash scripts/wheelhouse.sh download [DIR]   # DIR (default wheelhouse/): every pinned wheel + tlcourse's
#   bash scripts/wheelhouse.sh install  [DIR]   # .venv from DIR alone: --no-index, no registry touched
#   bash scripts/wheelhouse.sh check    [DIR]   # install into a throw-away venv with the index disabled,
#                                               # then import the course's packages and run the doctor
#
# Copy DIR (about 4 GB: torch's CUDA wheels run on CPUs too) and the repository to each laptop,
# then `bash scripts/wheelhouse.sh install` and `make lab` (make sees the installed stamp).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:-}
dir=${2:-wheelhouse}
python=${PYTHON:-python3}

case "$cmd" in
  download)
    mkdir -p "$dir"
    "$python" -m pip download --quiet --dest "$dir" -r requirements.lock
    "$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir" .
    "$python" -m pip download --quiet --dest "$dir" pip setuptools wheel
    echo "wheelhouse: $(ls "$dir" | wc -l) files, $(du -sh "$dir" | cut -f1) in $dir"
    ;;
  install|check)
    venv=.venv
    [ "$cmd" = check ] && venv=$(mktemp -d)/venv
    "$python" -m venv "$venv"
    # No index and no find-links but the wheelhouse: the registry is never asked.
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$dir" PIP_CONFIG_FILE=/dev/null PIP_EXTRA_INDEX_URL=
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r requirements.lock
    "$venv/bin/python" -m pip install --quiet --no-deps tlcourse
    if [ "$cmd" = install ]; then
      "$venv/bin/python" -m pip uninstall --quiet -y tlcourse
      "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
      touch "$venv/.installed"
    fi
    (cd "$(mktemp -d)" && KERAS_BACKEND=torch "$venv/bin/python" -c \
      "import torch, torchvision, keras, fastai, transformers, peft, timm, onnxruntime, tlcourse; print('wheelhouse install ok: torch', torch.__version__)")
    KERAS_BACKEND=torch "$venv/bin/python" -m tlcourse doctor || true
    ;;
  *)
    sed -n 2,12p "$0"; exit 2 ;;
esac
