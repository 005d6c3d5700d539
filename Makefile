# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

# The files holding `realtime` tests (tests/conftest.py marks the console's too), so their pass
# imports only these; the rest ran on both cores already.
REALTIME_TESTS = $(shell grep -rlE 'mark\.realtime' tests --include='test_*.py') \
                 $(wildcard tests/smpdevice/console)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/smp demo

test: $(STAMP)
	scripts/system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q -n 2 -m "not realtime"  # both cores (pytest-xdist)
	$(BIN)/python -m pytest -q -m realtime $(REALTIME_TESTS)  # wall-clock deadlines, alone

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
