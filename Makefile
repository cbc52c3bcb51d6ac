# Two commands matter: `make demo` (the main job, on a local cluster it starts itself) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup build lint crds clean

$(STAMP): operator/pyproject.toml runtime/pyproject.toml testenv/pyproject.toml requirements-dev.txt
	@echo "== setting up $(VENV) (Python deps pinned in the pyproject files)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --progress-bar off -e operator -e 'runtime[whisper]' -e testenv -r requirements-dev.txt
	touch $(STAMP)

setup: $(STAMP)

# Builds the local control plane and the trickle server once; cached by version outside the repo.
build: setup
	$(BIN)/byoc-testenv build

demo: build
	$(BIN)/python -m byoc_testenv.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/python -m byoc_operator.crd --check crds charts/byoc-operator/files/crds

test: build lint
	$(BIN)/pytest

crds: setup
	$(BIN)/python -m byoc_operator.crd crds charts/byoc-operator/files/crds

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
