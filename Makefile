# Two commands for a newcomer:  `make demo` (sets up, then runs the main job) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
# The pinned torch resolves to the CPU build on CPU-only machines that provide one (this project's
# CI) and to PyPI's CUDA build elsewhere; override with e.g. TORCH="torch==2.8.0".
TORCH  ?= torch==2.13.0
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEMO   ?= out/demo

.PHONY: install install-cuda test lint demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[test]"
	touch $(STAMP)

install-cuda: install
	$(BIN)/pip install -e ".[cuda]"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

# Runs `generate` on real weights when they are downloaded, else on a locally generated tiny
# random model (the output is then noise; the command says so).
demo: $(STAMP)
	$(BIN)/python -m skyaudio_cli.demo --out $(DEMO)

bench: $(STAMP)
	$(BIN)/python bench/cli_startup.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
