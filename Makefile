# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
# Byte-code caches on, whatever the caller's environment says: without them every one of the
# suite's `smp` processes and pytest workers compiled the whole package again (about 80 CPU-s of
# pass 1's 230 on this machine).
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck unit-tests realtime-tests lint bench clean

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

# Where the time goes (SMP_TEST_CPU, README's "Tests"): the first pass waits far more than it
# computes (pens playing passes on the real clock, `smp` processes, services' sockets), about
# 1 CPU-s in 3 of wall, so it runs four workers on the two cores, hands tests out one at a time
# (tests/conftest.py lists the long ones first) and type-checks beside it. Session 13, quiet
# machine, same minutes: 4 workers 99.6 s (142 CPU-s), 6 workers 90.6 s (153), 8 workers 90.0 s;
# but at 6 the realtime pass beside it missed a console heartbeat in a fresh clone: kept at 4.
PYTEST_WORKERS ?= 4

# The tests' files on tmpfs when it has room: the pass logs commit with synchronous=FULL, and
# each fsync on this machine's disk kept a test waiting (the records tests, same minute: 102 s
# of wall on disk, 75 s on tmpfs). Nothing in the suite depends on the disk's durability: its
# crash tests kill processes, and the full or read-only media are mounts of their own.
TEST_TMPDIR := $(shell d=/dev/shm; [ -d $$d ] && [ -w $$d ] && \
                 [ "$$(df -Pk $$d | awk 'NR==2 {print $$4}')" -gt 1048576 ] && echo $$d)
ifneq ($(TEST_TMPDIR),)
test typecheck unit-tests realtime-tests: export TMPDIR := $(TEST_TMPDIR)
endif

# The realtime pass runs beside mypy and pass 1 at a higher CPU priority (nice -10: a task of it
# weighs about 9 of theirs), so the scheduler gives a waiting realtime test a core at once and
# its wall-clock deadlines see about the machine they saw alone, while pass 1 takes the CPU it
# leaves (13 CPU-s over its 50 s). Raising a priority takes root (CI runs as root); without it
# the realtime pass runs alone after pass 1, as before. Lines are kept whole (--output-sync).
RT_NICE := $(shell nice -n -10 true 2>/dev/null && echo 'nice -n -10')

test: $(STAMP)
	scripts/system-deps
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory -j 3 --output-sync=line -o $(STAMP) \
	  typecheck unit-tests $(if $(RT_NICE),realtime-tests)
	$(if $(RT_NICE),,$(MAKE) --no-print-directory -o $(STAMP) realtime-tests)

typecheck: $(STAMP)
	$(BIN)/python -m mypy

unit-tests: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --maxschedchunk 1 -m "not realtime"

realtime-tests: $(STAMP)
	$(RT_NICE) $(BIN)/python -m pytest -q -p no:cacheprovider -m realtime $(REALTIME_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
