# Dropout in Depth: every command a reader, an instructor or CI needs.
# The environment and the targets env, site, lint, browser, test, test-fast and test-site are tools/env.py's
# (`python -m tools.env <target>` does the same without make): each creates .venv/ first when it is missing or stale.
# SETUP passes it options, e.g. `make test SETUP="--installer pip"`.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SETUP  ?=
BOOKENV:= $(PYTHON) -m tools.env $(SETUP)

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

env:
	$(BOOKENV)

site:
	$(BOOKENV) site

# ruff, fast and first: pyproject.toml holds the rules; notebook code cells are checked a second time at 88
# characters a line, the width of a notebook cell and of the site's code blocks.
lint:
	$(BOOKENV) lint

# The tiers are pytest markers that conftest.py sets on every test (pyproject.toml lists them); PYTEST_ARGS in
# tools/env.py holds each target's pytest arguments. `test` runs lint, then browser, then every test.
test:
	$(BOOKENV) test

test-fast:
	$(BOOKENV) test-fast

test-site:
	$(BOOKENV) test-site

# The browser tests drive Debian's Chromium (through Playwright, pinned in requirements.txt, which downloads no
# browser of its own). tools/env.py installs it with apt-get when it is missing: as root, or through sudo.
# CHROMIUM=/path/to/it tests with another Chromium or Chrome instead.
browser:
	$(BOOKENV) browser

notebooks: env
	$(PY) -m tools.execute_notebooks $(NB)

# The experiment store: every sweep of utils/sweeps.py, one process per core, resumable (run it again after a stop).
experiments: env
	$(PY) -m tools.experiments $(SWEEP)

assignments: env
	$(PY) -m tools.release_assignments

lab: env
	$(VENV)/bin/jupyter lab chapters/

serve:
	$(PY) -m http.server --directory _build/html 8000

clean:
	rm -rf _build data/cache
