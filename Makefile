# ExTensorflow. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
PORT   ?= 5000
# Tests: `make test` runs the whole suite, real trainings (`slow`) included (about 9 min on 2 cores);
# `make test-fast` skips the `slow` ones (about 2 min). Long end-to-end runs would be marked `e2e` and skipped here.
PYTEST_ARGS ?= -m "not e2e"

.DEFAULT_GOAL := help
.PHONY: help install train tune runs ui tensorboard test test-fast lint bench clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "extf needs Python >= 3.10, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ## Create .venv if missing and install extf with its dev extras

train: install ## Train the default experiment (digits + cnn) and log it to MLflow; extra overrides: ARGS="..."
	$(BIN)/extf train $(ARGS)

tune: install ## Tune the default study (digits + cnn + its search space) and log it to MLflow; ARGS="..."
	$(BIN)/extf tune $(ARGS)
	@echo "Results: MLflow store in mlruns/ -> run 'make ui' and open http://127.0.0.1:$(PORT)"

runs: install ## List the studies and their test metrics; RUN=<run_id> shows that study's leaderboard
	$(BIN)/extf runs $(if $(RUN),run_id=$(RUN),)

ui: install ## Serve the MLflow UI for mlruns/ on 127.0.0.1:$(PORT)
	$(BIN)/extf ui port=$(PORT)

tensorboard: install ## Serve the TensorBoard logs of runs with callbacks=tensorboard on 127.0.0.1:6006
	$(BIN)/tensorboard --logdir outputs --host 127.0.0.1 --port 6006

test: install ## Run the test suite (real trainings included; only `e2e`-marked runs are skipped)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install ## Run the tests that need no real training (-m "not slow and not e2e")
	$(BIN)/python -m pytest -m "not slow and not e2e"

bench: install ## Benchmarks that print ratios measured in one run (report only, never fail)
	@for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

lint: install ## ruff
	$(BIN)/ruff check src tests

clean: ## Remove run outputs (outputs/, multirun/, mlruns/) and caches
	rm -rf outputs multirun mlruns .pytest_cache .ruff_cache
