# The two set-up commands of the README: `make book` (the main job) and `make test`.
# Both create ./.venv on first use (pip, pinned CPU torch) and are idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu

.PHONY: venv book test data clean-book

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,book,dask]"
	touch $(STAMP)

data: venv
	$(BIN)/lungcl data prepare --profile $(PROFILE)

book: venv
	$(BIN)/lungcl book --profile $(PROFILE)

test: venv
	$(BIN)/python -m pytest

clean-book:
	rm -rf _build notebooks/_executed
