# Each target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: reproduce reproduce-quick test test-fast bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test,plot,docs]"
	touch $(STAMP)

reproduce: $(STAMP)  ## the seed experiment, end to end (figures in reproduce-out/)
	$(BIN)/skhbnn reproduce --out reproduce-out

reproduce-quick: $(STAMP)  ## a smoke run of the same, in a few minutes
	$(BIN)/skhbnn reproduce --quick --out reproduce-out

test: $(STAMP)  ## the whole test suite, slow statistical tests included (what CI runs)
	$(BIN)/python -m pytest -ra -q

test-fast: $(STAMP)  ## the suite without the slow statistical tests
	$(BIN)/python -m pytest -ra -q -m "not slow"

bench: $(STAMP)  ## benchmarks: speed ratios against plain PyMC scripts
	$(BIN)/python -m benchmarks

docs: $(STAMP)  ## build the documentation site (strict: warnings are errors)
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) site reproduce-out
