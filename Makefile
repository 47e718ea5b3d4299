# ExTensorflow. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
PORT   ?= 5000
SERVER_PORT ?= 5001
# Tests: `make test` runs the suite in 2 processes: unit, integration, real trainings (`slow`) and the quick
# end-to-end tests (`e2e`); the longest end-to-end runs (`long`: kill -9 and Ctrl-C faults, the MLflow server and
# browser tests, the wheel in a fresh virtualenv, ...) skip there and are listed at its end: `make test-long` runs
# them (pytest --long -m long), and .ci/run runs `make test`, then `make test-long`, so CI runs every test. The tests
# whose program is missing skip and are listed at the end with `make test-deps`, unless EXTF_REQUIRE_SERVER=1 /
# EXTF_REQUIRE_BROWSER=1, as .ci/run sets. `make test-fast` skips `slow` and `e2e`: no training.
# PYTEST_ARGS="tests/unit -x" runs a part.
PYTEST_ARGS ?=
XDIST ?= -n 2 --dist loadfile
# Debian packages of the programs some tests drive for real (they skip without them; `make test` lists them at the end)
TEST_DEBS ?= graphviz chromium postgresql zsh
SUDO = $(if $(filter 0,$(shell id -u)),,sudo)

.DEFAULT_GOAL := help
.PHONY: help install train tune runs report ui server server-stop tensorboard test test-long test-fast test-deps lint bench dist clean

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
	@echo "extf and mlflow are installed in $(VENV)/bin: run \`source $(VENV)/bin/activate\` to use them as \`extf ...\`"

runs: install ## List the studies and their test metrics; RUN=<run_id> shows that study's leaderboard
	$(BIN)/extf runs $(if $(RUN),run_id=$(RUN),)

report: install ## Write a self-contained HTML report of the latest finished tune study (RUN=<run_id>: that study)
	$(BIN)/extf report $(if $(RUN),run_id=$(RUN),)

ui: install ## Serve the MLflow UI for mlruns/ on 127.0.0.1:$(PORT)
	$(BIN)/extf ui port=$(PORT)

server: install ## Start an MLflow server (its UI too) on 127.0.0.1:$(SERVER_PORT) with a PostgreSQL store (Debian postgresql); use tracking=mlflow_server
	$(BIN)/extf server start port=$(SERVER_PORT)

server-stop: install ## Stop the MLflow server that `make server` started on $(SERVER_PORT)
	$(BIN)/extf server stop port=$(SERVER_PORT)

tensorboard: install ## Serve the TensorBoard logs of runs with callbacks=tensorboard on 127.0.0.1:6006
	$(BIN)/tensorboard --logdir outputs --host 127.0.0.1 --port 6006

test: install ## The layer contract (lint-imports), then the test suite but its `long` end-to-end runs (listed at its end)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(XDIST) --durations=20 $(PYTEST_ARGS)

test-long: install ## The `long` end-to-end runs `make test` leaves out: faults, MLflow server, browser, wheel (CI runs both)
	$(BIN)/python -m pytest $(XDIST) --long -m long --durations=20 $(PYTEST_ARGS)

test-fast: install ## The tests that train no model (-m "not slow and not e2e"), in 2 processes: about 2 minutes
	$(BIN)/python -m pytest $(XDIST) -m "not slow and not e2e" --durations=10 $(PYTEST_ARGS)

test-deps: ## Install the Debian packages the skipped tests need: Graphviz, Chromium, PostgreSQL, zsh (sudo when not root)
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y $(TEST_DEBS)

bench: install ## Benchmarks: median, range and verdict of each figure over alternated runs; log in bench/last-run.log; ARGS="P2 --reps 5"
	$(BIN)/python bench/run.py $(ARGS) 2>&1 | tee bench/last-run.log

lint: install ## ruff, and lint-imports: the layer contract and no import cycles ([tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

dist: install ## Build extf's wheel and sdist into dist/ (python -m build); pip install dist/extf-*.whl anywhere
	$(BIN)/python -m build --outdir dist .

clean: ## Remove run outputs (outputs/, multirun/, mlruns/) and caches
	rm -rf outputs multirun mlruns .pytest_cache .ruff_cache .import_linter_cache
