# kgrec's two commands:  `make demo` (set up + run the quickstart)  and  `make test`.
#
# Dependencies (torch alone is ~3 GB from PyPI) go into one virtual environment per
# dependency set, kept outside the clone and keyed on requirements.lock, so a fresh clone
# (and CI) reuses it; this clone's source is then installed into it in editable mode.

PYTHON ?= python3
SHELL := bash
LOCK_HASH := $(shell sha256sum requirements.lock | cut -c1-12)
VENV_ROOT ?= $(HOME)/.cache/kgrec/venvs
VENV ?= $(VENV_ROOT)/$(LOCK_HASH)
BIN := $(VENV)/bin

# The test suite's own Neo4j server: its data lives in the clone (ignored), its jars are shared.
# Its Bolt port is a free one picked per run (unless KGREC_NEO4J_PORT is set), so the suite
# neither collides with a Neo4j the user already runs on 7687 nor with another clone's tests.
export KGREC_NEO4J_HOME ?= $(CURDIR)/.kgrec/neo4j
ifndef KGREC_NEO4J_PORT
KGREC_NEO4J_PORT := $(shell $(PYTHON) -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
endif
export KGREC_NEO4J_PORT

export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test venv lint browser bench clean help

help:
	@echo "make demo   - set up, then run 'kgrec quickstart' (Last.FM, best model, ~1 min)"
	@echo "make test   - set up, then lint and run the test suite"
	@echo "make bench  - the baselines benchmark (long; writes benchmarks/results/)"
	@echo "venv: $(VENV)"

$(VENV)/.deps-installed: requirements.lock
	@mkdir -p $(VENV_ROOT)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	touch $@

# Point the shared environment at this clone's source (a second, never stale).
venv: $(VENV)/.deps-installed
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .

demo: venv
	$(BIN)/kgrec quickstart

lint: venv
	$(BIN)/ruff check kgrec tests benchmarks

# The service page's test drives a real browser: Debian's Chromium and its ChromeDriver (one
# version, one package source). Installed when missing, as root (CI); otherwise it says how.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null; \
	  else \
	    echo "the page test needs Chromium: sudo apt-get install chromium chromium-driver" >&2; \
	    exit 1; \
	  fi; }

# Starts the real Neo4j server the Neo4j tests talk to, and stops it however the recipe ends:
# tests failing, Ctrl-C, or a TERM (which .ci/run sends to make's whole process group).
test: venv lint browser
	trap '$(BIN)/kgrec neo4j stop' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM HUP; \
	$(BIN)/kgrec neo4j start && $(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
