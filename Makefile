# Dropout in Depth: every command a reader, an instructor or CI needs.
# `make site` and `make test` create the environment in .venv/ first when it is missing or stale.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JB     := $(VENV)/bin/jupyter-book

.PHONY: help env site test notebooks lab serve clean

help:
	@echo "make site       build the static site into _build/html (creates .venv when missing)"
	@echo "make test       run every test: utils, notebooks (nbval), the site build and its checks"
	@echo "make notebooks  re-execute every notebook in _toc.yml top to bottom and store its outputs"
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

test: $(STAMP)
	$(PY) -m pytest

notebooks: $(STAMP)
	$(PY) -m tools.execute_notebooks $(NB)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab chapters/

serve:
	$(PY) -m http.server --directory _build/html 8000

clean:
	rm -rf _build data/cache
