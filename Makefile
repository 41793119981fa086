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

# The FHIR packages the server serves by default (FHIR core and HL7 Terminology, about 21 MB to
# download, 165 MB unpacked in ~/.fhir/packages), from the package registries: nothing is fetched
# when they are there already.
install: $(STAMP)
	$(BIN)/fhir-plugin install

serve: install
	$(BIN)/fhir-plugin serve

# The tests of the default content read the default packages in the default cache, whatever the shell sets.
test: $(STAMP)
	env -u FHIR_PLUGIN_PACKAGES -u FHIR_PLUGIN_PACKAGE_CACHE -u FHIR_PLUGIN_PACKAGE_SKIP $(BIN)/fhir-plugin install
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q

# Throughput and latency against a hello-world baseline (wrk and matplotlib are installed if missing).
bench: install
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python bench/run.py

# How latency, start-up and memory grow with content: synthetic code systems of 100, 10,000 and
# 100,000 concepts, against the same baseline (matplotlib is installed if missing; about 2-3 minutes).
bench-scaling: $(STAMP)
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python bench/scaling.py

clean:
	rm -rf $(VENV) build *.egg-info
