# The two set-up commands of the README: `make book` (the main job) and `make test`.
# Both create ./.venv on first use (pip, pinned CPU torch) and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu

.PHONY: venv book test data clean-book lab lab-server

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,book,dask,real]"
	touch $(STAMP)

data: venv
	$(BIN)/lungcl data prepare --profile $(PROFILE)

book: venv
	$(BIN)/lungcl book --profile $(PROFILE)

test: venv
	$(BIN)/lint-imports   # the layering written in pyproject.toml ([tool.importlinter])
	$(BIN)/python -m pytest

# JupyterLab for a class: the chapters (notebooks/NN_*.py) open as notebooks through jupytext's
# contents manager; only this target installs JupyterLab. LAB_PORT / LAB_IP to change where it listens,
# LAB_ARGS for more options. `lab-server` starts the server alone (what `lab` does after installing).
# Jupyter refuses to run as root (containers often do) unless told: --allow-root, for root only.
LAB_PORT ?= 8888
LAB_IP   ?= 127.0.0.1
LAB_ARGS ?=
LAB_AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
lab: venv
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(MAKE) --no-print-directory lab-server

lab-server:
	$(BIN)/python -m jupyterlab --ip=$(LAB_IP) --port=$(LAB_PORT) --notebook-dir=notebooks \
		--ServerApp.contents_manager_class=jupytext.TextFileContentsManager $(LAB_AS_ROOT) $(LAB_ARGS)

clean-book:
	rm -rf _build notebooks/_executed
