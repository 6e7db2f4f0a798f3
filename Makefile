# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs gankit, trains the embedded default (digits, CPU, a few minutes)
#   make test   installs the test extras and runs the test suite (the command CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-all install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/gankit train

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "slow or not slow"

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
