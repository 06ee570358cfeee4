# rushhour: two commands on a fresh machine.
#   make run    create .venv, install, start the demo main job on embedded defaults (SQLite, local folders)
#   make test   install the dev extras, then ruff, mypy and pytest (doctests included)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
ARGS ?=

.PHONY: run test lint typecheck pytest bench clean chromium

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

$(VENV)/.run-installed: pyproject.toml | $(PY)
	$(PIP) install -q -c constraints.txt -e .
	@touch $@

# torch is installed alone and pinned to the CPU build on disk, before anything that depends on it,
# so that no resolver ever pulls a CUDA build.
$(VENV)/.dev-installed: pyproject.toml constraints.txt | $(PY)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[dev,deepar]"
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(VENV)/bin/rushhour run $(ARGS)

chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	    echo "chromium could not be installed: browser tests will skip (or fail in CI)"; }

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(VENV)/.dev-installed
	$(VENV)/bin/mypy

pytest: $(VENV)/.dev-installed
	$(VENV)/bin/pytest $(ARGS)

test: $(VENV)/.dev-installed chromium lint typecheck pytest

bench: $(VENV)/.dev-installed
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info src/*.egg-info
