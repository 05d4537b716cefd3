# Two entry points: `make serve` and `make test`. Both set everything up from pyproject.toml first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
OUT    ?= site

.PHONY: setup serve test lint build validate bench clean

$(BIN)/twinning-kg: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $@

setup: $(BIN)/twinning-kg

build: setup
	$(BIN)/twinning-kg build --out $(OUT)

validate: setup
	$(BIN)/twinning-kg validate

serve: build
	$(BIN)/twinning-kg serve --graph $(OUT) --host $(HOST) --port $(PORT) --base-url http://$(HOST):$(PORT)/

lint: setup
	$(BIN)/ruff check src tests bench

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run.py
	$(BIN)/python bench/cache_mix.py --reuse --sizes world synthetic-10x
	$(BIN)/python bench/plot.py

clean:
	rm -rf $(VENV) $(OUT) $(OUT).releases bench/out
