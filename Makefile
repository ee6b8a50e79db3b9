# tlcourse — two commands do all the set-up:  `make lab`  and  `make test`.
# Both create .venv (if needed) and install the exact pins of requirements.lock.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.installed
PROFILE  ?= quick
LAB_ARGS ?=
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)
PYTEST_ARGS ?=
NB_TIMEOUT ?= 170
# Notebooks under test use their own course cache (built on the first run, then reused);
# unit tests each get a temporary one (see tests/conftest.py).
TEST_HOME ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tlcourse-test

export TLCOURSE_PROFILE ?= $(PROFILE)
export KERAS_BACKEND := torch
export PYTHONHASHSEED := 0

.PHONY: lab test install unit notebooks lint format lock clean help

help:
	@echo "make lab    - install (first time) and open JupyterLab on the course"
	@echo "make test   - install (first time) and run every test and notebook, offline"
	@echo "make lint   - ruff check + format check (notebooks included)"

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name tlcourse --display-name "Python (tlcourse)" >/dev/null
	$(PY) -m jupyter lab --ServerApp.root_dir="$(CURDIR)" $(ROOT_ARGS) $(LAB_ARGS) notebooks/00_welcome.ipynb

# Lint (ruff, seconds); unit tests, claims tests and the grading round trip; then `preflight` builds the course cache
# the notebooks use (as an instructor does before a class); then every notebook in notebooks/
# and solutions/, two at a time (one whole notebook per worker: --dist loadscope). Every stage
# runs two workers of one OpenMP thread each: two workers of two threads on two cores spin
# against each other and run ~40x slower. All offline; each notebook's time is reported.
NB_RUN := OMP_NUM_THREADS=1 TLCOURSE_HOME=$(TEST_HOME) bash scripts/offline.sh $(PY) -m pytest \
	-n 2 --dist loadscope -p no:cacheprovider --nbval-lax --nbval-current-env \
	--nbval-cell-timeout=$(NB_TIMEOUT)

test: $(STAMP)
	$(PY) -m ruff check --quiet . && $(PY) -m ruff format --check --quiet .
	OMP_NUM_THREADS=1 bash scripts/offline.sh $(PY) -m pytest -n 2 --dist loadscope -p no:cacheprovider $(PYTEST_ARGS) tests
	TLCOURSE_HOME=$(TEST_HOME) bash scripts/offline.sh $(PY) -m tlcourse preflight
	$(NB_RUN) $(PYTEST_ARGS) notebooks solutions

unit: $(STAMP)
	OMP_NUM_THREADS=1 bash scripts/offline.sh $(PY) -m pytest -n 2 --dist loadscope -p no:cacheprovider -m "not claims" tests

notebooks: $(STAMP)
	TLCOURSE_HOME=$(TEST_HOME) bash scripts/offline.sh $(PY) -m tlcourse preflight
	$(NB_RUN) $(PYTEST_ARGS) notebooks solutions

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

# Re-pin every dependency after changing pyproject.toml (run on a machine with the registry).
lock: $(STAMP)
	$(PY) -m pip install --quiet -e ".[all]"
	$(PY) -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
