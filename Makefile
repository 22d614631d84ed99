# make demo: set up .venv and run the main job on the embedded digits data.
# make test: set up .venv and run ruff and the test suite. --dist loadfile keeps each test file on one worker, so a
# module-scoped fixture (a finished demo run, a trained supernet) is built once, not once per worker.
# Override the torch pin with e.g. `make demo TORCH=2.5.1` (the default is a local CPU wheel on our machines).
TORCH ?= 2.13.0
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(TORCH)

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "torch==$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# The whole pipeline on digits: about 2.5 minutes on 2 CPU cores (157 s measured; bench/RESULTS.md).
# Run it again to continue or re-print the result.
demo: $(STAMP)
	$(BIN)/glit run demo --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile -q --durations=15

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache .hypothesis
