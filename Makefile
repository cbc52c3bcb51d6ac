# Two commands matter: `make demo` (the main job, on a local cluster it starts itself) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup build lint crds lock mutation clean

# Every package comes from the hash-locked sets (pip itself from locks/pip.txt, then locks/dev.txt; `make lock` after
# changing a pin); the project's own distributions are installed from the tree on top, without dependencies or an
# isolated build.
$(STAMP): operator/pyproject.toml edge/pyproject.toml runtime/pyproject.toml testenv/pyproject.toml requirements-dev.txt locks/pip.txt locks/dev.txt
	@echo "== setting up $(VENV) (hash-locked: locks/dev.txt)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r locks/pip.txt
	$(BIN)/python -m pip install --progress-bar off --require-hashes -r locks/dev.txt
	$(BIN)/python -m pip install --progress-bar off --no-deps --no-build-isolation -e operator -e edge -e runtime -e testenv
	touch $(STAMP)

setup: $(STAMP)

# Builds the local control plane and the trickle server once; cached by version outside the repo.
build: setup
	$(BIN)/byoc-testenv build

demo: build
	$(BIN)/python -m byoc_testenv.demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy --config-file mypy.ini operator/byoc_operator edge/byoc_edge runtime/byoc_runtime testenv/byoc_testenv
	$(BIN)/python -m byoc_operator.crd --check crds charts/byoc-operator/files/crds

test: build lint
	$(BIN)/pytest

# Re-resolves locks/*.txt from the pins (needs PyPI); tests/images/test_locks.py checks they agree.
lock: setup
	$(BIN)/python locks/resolve.py

crds: setup
	$(BIN)/python -m byoc_operator.crd crds charts/byoc-operator/files/crds

# Mutation testing of the pure core against its fast unit tests only (not part of `make test`: it takes a while).
# Writes docs/mutation.md; fails when a module scores below 90%. One module: `make mutation MODULES=status`.
mutation: setup
	$(BIN)/python -m byoc_testenv.mutation $(MODULES)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants
