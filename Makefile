# Two commands do everything on a fresh clone with only python3 present:
#   make lab    the main job: JupyterLab on notebooks/quickstart.ipynb
#   make test   the whole test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo lab bench bench-quick lint

# JupyterLab refuses to run as root unless told.
ROOTFLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,lab,browser,bench,dev]'
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab $(ROOTFLAG) notebooks/quickstart.ipynb

demo: $(STAMP)
	$(BIN)/python -m circus.demo

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

lint: $(STAMP)
	$(BIN)/ruff check circus circus_widgets tests bench
	$(BIN)/mypy
