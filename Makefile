# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_CORE := $(VENV)/.installed-core
STAMP_TEST := $(VENV)/.installed-test
# The compiled step kernels, built by the install (setup.py); a change rebuilds them.
KERNEL_SOURCES := setup.py $(wildcard lstm_trace/kernels/src/*)

.PHONY: demo test lint bench sample-models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_CORE): pyproject.toml $(KERNEL_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml $(KERNEL_SOURCES) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP_CORE)

demo: $(STAMP_CORE)
	$(BIN)/lstm-trace sample_models/brackets.keras sample_models/brackets_input.npy --format table --units 0:8 --steps 0:14

test: $(STAMP_TEST)
	$(BIN)/ruff check lstm_trace tests benchmarks sample_models
	$(BIN)/python -m pytest -q

lint: $(STAMP_TEST)
	$(BIN)/ruff check lstm_trace tests benchmarks sample_models

bench: $(STAMP_TEST)
	$(BIN)/python benchmarks/bench_engine.py

sample-models: $(STAMP_TEST)
	$(BIN)/python sample_models/make_sample_models.py

clean:
	rm -rf $(VENV) .pytest_cache .fixture-cache build *.egg-info
