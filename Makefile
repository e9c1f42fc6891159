# stock-platform: `make up` runs the whole platform on this machine, `make test` tests it.
# Each target installs what it needs (a .venv here, Debian packages, jars from Maven Central).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export STOCK_DATA_DIR ?= $(CURDIR)/.stock-data
export DAGSTER_HOME ?= $(STOCK_DATA_DIR)/dagster
PYTEST_ARGS ?=

.PHONY: install up down status services services-down test test-unit lint bench chaos clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

services: install
	$(BIN)/stock-platform services up

services-down: install
	$(BIN)/stock-platform services down

up: install
	$(BIN)/stock-platform platform up

down: install
	$(BIN)/stock-platform platform down

status: install
	$(BIN)/stock-platform platform status

test: install lint
	$(BIN)/stock-platform services up
	$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check stock_platform stock_platform_tests bench
	$(BIN)/ruff format --check stock_platform stock_platform_tests bench

bench: install
	$(BIN)/stock-platform services up
	$(BIN)/python -m bench

# The full fault-injection run: 100,000 quotes, all six faults (make test runs a short form).
chaos: install
	$(BIN)/stock-platform services up
	CHAOS_QUOTES=$${CHAOS_QUOTES:-100000} $(BIN)/pytest -m chaos -s -p no:cacheprovider $(PYTEST_ARGS) stock_platform_tests/chaos

clean: down
	rm -rf $(STOCK_DATA_DIR)
