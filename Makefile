# Dropout in Depth: every command a reader, an instructor or CI needs.
# `make site` and `make test` create the environment in .venv/ first when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JB     := $(VENV)/bin/jupyter-book
RUFF   := $(VENV)/bin/ruff

.PHONY: help env site lint test test-fast test-site browser notebooks experiments assignments lab serve clean

help:
	@echo "make site       build the static site into _build/html (creates .venv when missing)"
	@echo "make test       run every test (CI runs this): ruff, then every tier: unit, slow, notebooks (nbval), site, browser"
	@echo "make test-fast  ruff, then the unit tier only: utils and the tooling, no notebook run, no site build (under a minute)"
	@echo "make test-site  only the site tier: build the site and check it (HTML checks and the browser tests)"
	@echo "make lint       ruff: Python files at 120 characters a line, notebook code cells at 88"
	@echo "make notebooks  re-execute every notebook in _toc.yml top to bottom and store its outputs"
	@echo "make experiments  run the sweeps too long for a notebook into data/results/ (SWEEP=name for one; resumable)"
	@echo "make assignments  generate the student versions of the assignments and a release archive (nbgrader)"
	@echo "make lab        open the chapters in JupyterLab from the book's environment"
	@echo "make serve      serve _build/html on http://localhost:8000"

env: $(STAMP)

# The stamp is older than requirements.txt or pyproject.toml -> reinstall (pip skips what is already right).
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned environment into $(VENV) (about 3 minutes and 3 GB on a fresh machine)..."
	$(PY) -m pip install -qq --requirement requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --editable .
	touch $(STAMP)

site: $(STAMP)
	$(PY) -m tools.build_site

# ruff first: it takes a second, and fails fast. pyproject.toml holds the rules; notebook code cells are checked a
# second time at 88 characters a line, the width of a notebook cell and of the site's code blocks.
lint: $(STAMP)
	$(RUFF) check .
	@echo "ruff: notebook code cells, 88 characters a line"
	@$(RUFF) check . --select E501 --line-length 88 --config 'include = ["chapters/*.ipynb"]'

# The tiers are pytest markers that conftest.py sets on every test (pyproject.toml lists them).
test: $(STAMP) lint browser
	$(PY) -m pytest

test-fast: $(STAMP) lint
	$(PY) -m pytest tests -m unit --durations=10

test-site: $(STAMP) browser
	$(PY) -m pytest tests -m site

# The browser tests drive Debian's Chromium (through Playwright, pinned in requirements.txt, which downloads no
# browser of its own). Install it with apt-get when it is missing: as root, or through sudo. CHROMIUM=/path/to/it
# tests with another Chromium or Chrome instead.
browser:
	@command -v "$${CHROMIUM:-chromium}" >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests (apt-get, about a minute)..."; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  command -v apt-get >/dev/null 2>&1 || { echo "error: the browser tests need Chromium, and this machine has no apt-get to install it. Install Chromium, then run this again (with CHROMIUM=/path/to/chromium if it is not on the PATH as chromium)." >&2; exit 1; }; \
	  { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || { \
	    echo "error: could not install chromium with apt-get (it needs root or sudo, and Debian's package lists). Run 'apt-get install chromium' as root, then run this again." >&2; exit 1; }; \
	  command -v chromium >/dev/null 2>&1 || { echo "error: apt-get ran but there is still no chromium on the PATH." >&2; exit 1; }; \
	}

notebooks: $(STAMP)
	$(PY) -m tools.execute_notebooks $(NB)

# The experiment store: every sweep of utils/sweeps.py, one process per core, resumable (run it again after a stop).
experiments: $(STAMP)
	$(PY) -m tools.experiments $(SWEEP)

assignments: $(STAMP)
	$(PY) -m tools.release_assignments

lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters/

serve:
	$(PY) -m http.server --directory _build/html 8000

clean:
	rm -rf _build data/cache
