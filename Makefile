# make demo: set up .venv and run the main job on the embedded digits data.
# make test: set up .venv and run ruff and the test suite.
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

demo: $(STAMP)
	$(BIN)/glit space demo --level 1
	$(BIN)/glit space demo --level 2
	$(BIN)/glit profile --arch deit-tiny
	$(BIN)/glit profile --arch glit-tiny-released

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: lint
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .ruff_cache .hypothesis
