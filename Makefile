# Two commands: `make run` (the whole platform) and `make test` (lint + every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test browser-test lint format install clean

$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python -m config.launcher

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)

# The cockpit in a headless Chromium (Playwright drives the system's /usr/bin/chromium;
# .ci/run installs it with apt-get). Deselected from `make test` by the browser marker.
browser-test: install
	$(BIN)/pytest -m browser tests/browser $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var/static
