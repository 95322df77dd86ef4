# The README's two commands: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-slow bench bench-anchors lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m tabpilot.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m bench.timelimit
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.automl --budget 60

# FLAML and AutoGluon for `python -m bench.automl --systems ...,flaml,autogluon`, in a venv
# of their own (their pins clash with tabpilot's); about 1 GB.
ANCHORS_VENV := bench/.venv-anchors
ANCHORS_STAMP := $(ANCHORS_VENV)/.installed-$(shell cksum bench/anchors-requirements.txt | cut -d' ' -f1)

bench-anchors: $(ANCHORS_STAMP)

$(ANCHORS_STAMP): bench/anchors-requirements.txt
	@test -x $(ANCHORS_VENV)/bin/python || $(PYTHON) -m venv $(ANCHORS_VENV)
	$(ANCHORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(ANCHORS_VENV)/bin/python -m pip install --quiet -r bench/anchors-requirements.txt
	@rm -f $(ANCHORS_VENV)/.installed-*
	@touch $(ANCHORS_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

clean:
	rm -rf $(VENV) $(ANCHORS_VENV) demo-output .pytest_cache
