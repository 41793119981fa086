# Two commands for a fresh clone: `make serve` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test bench bench-scaling install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/fhir-plugin serve

test: $(STAMP)
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

# Throughput and latency against a hello-world baseline (wrk and matplotlib are installed if missing).
bench: $(STAMP)
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python bench/run.py

# How latency, start-up and memory grow with content: synthetic code systems of 100, 10,000 and
# 100,000 concepts, against the same baseline (matplotlib is installed if missing; about 2-3 minutes).
bench-scaling: $(STAMP)
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python bench/scaling.py

clean:
	rm -rf $(VENV) build *.egg-info
