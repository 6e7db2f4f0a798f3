# Two commands do all the set-up on a fresh machine:
#   make demo   creates .venv, installs gankit, trains the embedded default (digits, CPU, ~30 s of training on 2 cores)
#   make test   installs the test extras and runs the test suite (the command CI runs)
#   make docs   installs the docs extra and builds the manual in docs/ into site/ (offline; mkdocs build --strict)
#   make browser  installs Debian's Chromium and ChromeDriver (as root, when missing) for the report's browser test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test test-all install clean docs browser

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
	$(BIN)/gankit train --threads 1  # one thread: 31 s against 27 s on two idle cores, many times faster on busy ones

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "slow or not slow"

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[docs]"
	touch $@

# NO_MKDOCS_2_WARNING silences mkdocs-material's banner about MkDocs 2; the build fetches nothing.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

# The report is tested the way a person sees it, in a real browser: Debian's packages, never a browser a test tool
# would download. Without them, tests/test_report_browser.py is skipped (CI requires it: .ci/run).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	else \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) \
			apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	fi

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
