"""Suite-wide hooks: `slow` tests (the fault campaign) run only when asked for.

    .venv/bin/pytest -m slow        # or SMP_SLOW=1 .venv/bin/pytest

`make test` runs the suite in two passes: every test not marked `realtime` on four pytest-xdist
workers over the two cores (they mostly wait on real time, see the Makefile), and beside it the
`realtime` ones in one process at a higher CPU priority (alone after it without root), so their
wall-clock deadlines get a core whenever they need one.
SMP_TEST_CPU=FILE appends each test's CPU seconds (this process and the children it waited for)
and wall seconds (setup, call and teardown) to FILE: where the suite's time goes, beyond
`--durations` (README.md sums it per file).
"""

from __future__ import annotations

import gc
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# A suite started in the background by a shell without job control (`cmd &` in a script, CI
# runners, nohup) inherits SIGINT *ignored*, and Python then never raises KeyboardInterrupt, nor
# do the `smp` processes the tests start (an ignored signal stays ignored across exec). The
# Ctrl-C tests need it delivered: give this process Python's own handler back; its children
# then start with the default disposition.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The garbage collector's young generation is collected every 700 net allocations by default:
# the tests allocate much and briefly (hypothesis' examples, frames, pydantic models), and most
# of what a young collection walks would have been freed by reference counting a moment later.
# At 5,000 (and full collections after 20 x 20 of them) its own time fell by a third to a half
# (835 tests in one process: 1.14-1.49 -> 0.65-0.79 CPU-s; 1,190 tests on two workers: 1.62 ->
# 1.02), about 2 % of the tests' CPU. Only when collections happen changes; what is garbage is
# collected as before (the clinic-day test collects explicitly before it measures).
gc.set_threshold(5000, 20, 20)

# Hypothesis' default 200 ms deadline per example is a wall-clock assertion: on two loaded cores
# (four workers, other jobs) a plain example took 570 ms and failed as "flaky". No test asserts
# a timing; the examples and their counts are unchanged.
settings.register_profile("smp", deadline=None)
settings.load_profile("smp")


def _slow_requested(config: pytest.Config) -> bool:
    if os.environ.get("SMP_SLOW", "") not in ("", "0"):
        return True
    markexpr = config.getoption("markexpr", default="") or ""
    return "slow" in markexpr and "not slow" not in markexpr


if os.environ.get("SMP_TEST_CPU"):
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
        before, start = _cpu_s(), time.perf_counter()
        yield
        with open(os.environ["SMP_TEST_CPU"], "a") as report:
            report.write(f"{_cpu_s() - before:8.2f} {time.perf_counter() - start:8.2f} "
                         f"{item.nodeid}\n")


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# Tests marked `realtime` here rather than in their files: a browser driving a needle through a
# service whose in-process simulated pen runs on wall time. Beside another test on a loaded
# machine the starved simulator lets its lease lapse (the fail-safe working) and the page never
# sees `running`; in the realtime pass (its own process, first on the CPU) they hold. So do the
# paging, keys and message files: no needle runs in them, but their service connects to a
# real-time in-process pen, which beside Chromium, three workers and two busy loops once missed
# four tries of its connect (CI, session 9). The pattern file, with no service, runs in pass 1.
REALTIME_FILES = ("tests/smpdevice/console/test_console.py",
                  "tests/smpdevice/console/test_console_heartbeat.py",
                  "tests/smpdevice/console/test_console_pen_lost.py",
                  "tests/smpdevice/console/test_console_runner.py",
                  "tests/smpdevice/console/test_console_log_paging.py",
                  "tests/smpdevice/console/test_console_keys.py",
                  "tests/smpdevice/console/test_console_message.py",
                  "tests/smpdevice/console/test_rev16_",  # review 16's console files (and 16b's)
                  "tests/smpdevice/console/test_rev16b_")

# The files holding the longest tests (the console's browser tests of pass 1, pens playing
# passes on wall time, `smp` processes, hypothesis runs of hundreds of examples), longest first
# as SMP_TEST_CPU measured them. They are collected first, so `make test` (`--maxschedchunk 1`)
# hands them out while the short tests fill the gaps, and the run never ends waiting on a long
# test started last. Only the order changes; a file not named here keeps its usual place after
# these.
LONG_FIRST = (
    "tests/smpdevice/cli/test_hang13_ctrl_c_silent_service.py",  # `smp serve` processes
    "tests/smpdevice/cli/test_rev17b_lock_after_readings.py",  # a guided calibrate, 5 s lock
    "tests/smpdevice/records/test_review11_fixc2_busy_foreign.py",  # SQLite's 5 s busy wait
    "tests/smpdevice/test_help_examples.py",
    "tests/smpdevice/cli/test_cli_service.py",
    "tests/smpdevice/console/test_console_line_pattern.py",
    "tests/smpdevice/cli/test_cli_service_envelope_line.py",
    "tests/smpdevice/cli/test_cli_resume.py",
    "tests/smpdevice/cli/test_cli_run.py",
    "tests/smpdevice/cli/test_review4_fixa.py",
    "tests/smpdevice/records/test_records_central.py",
    "tests/firmware_protocol/test_fault_names.py",
    "tests/firmware_protocol/test_stream_splits.py",
    "tests/smpdevice/cli/test_cli_two_chairs.py",
    "tests/smpdevice/test_docs.py",
    "tests/smpdevice/control/test_aio_cancel.py",
    "tests/smpdevice/test_docs_python.py",
    "tests/smpdevice/calibration/test_workflow_ended_outside.py",
    "tests/firmware_protocol/test_reflex_peer.py",
    "tests/smpdevice/service/test_client_heartbeat.py",
    "tests/smpdevice/sessions/test_profiles_strict.py",
    "tests/simulators/test_fault_overlap.py",
    "tests/simulators/test_fault_spec_grammar.py",
    "tests/smpdevice/test_loader.py",
    "tests/smpdevice/cli/test_serve_sim_clock.py",
    "tests/smpdevice/control/test_own_counts_beside_slow_listeners.py",
    "tests/smpdevice/records/test_records_readonly.py",
    "tests/smpdevice/test_examples.py",
    "tests/smpdevice/test_envelope.py",
)


# Tests long enough (30 s and more) that two of them side by side in a file, run one after the
# other on one worker, would exceed the suite's 60 s target alone: pytest-xdist hands each
# worker two tests at the start and keeps two queued even with `--maxschedchunk 1`, so each is
# put first in a worker's first pair instead. None now: test_hang13_ctrl_c_silent_service.py's
# two waits of `smp run --service`'s 30 s bound (cli/remote.py STOP_WAIT_S, 65 s on one worker)
# run on virtual time (remote.WAIT_CLOCK).
LONGEST: tuple[str, ...] = ()


def _longest_apart(items: list[pytest.Item]) -> None:
    """Move LONGEST's tests to places 0, 2, ...: the first of each worker's first pair."""
    longest = [item for item in items if item.nodeid in LONGEST]
    rest = [item for item in items if item.nodeid not in LONGEST]
    spread: list[pytest.Item] = []
    while longest or rest:
        spread += [*longest[:1], *rest[:1]]
        del longest[:1], rest[:1]
    items[:] = spread


def _long_first(item: pytest.Item) -> int:
    path = item.nodeid.partition("::")[0]
    return LONG_FIRST.index(path) if path in LONG_FIRST else len(LONG_FIRST)


# Property tests that ask for more than hypothesis' default 100 examples (150-500) run half
# as many, at least 100, unless SMP_THOROUGH=1 or the slow tests are asked for: they were a
# fifth of the suite's CPU. Every run draws new examples (CI starts without a database), so the
# runs together still cover the full counts. Hypothesis reads a test's settings from this
# attribute when the test runs; without it a test keeps its own count.
_SETTINGS = "_hypothesis_internal_use_settings"


def _fewer_examples(item: pytest.Item) -> None:
    test = getattr(item, "obj", None)
    asked = getattr(test, _SETTINGS, None)
    if asked is None or getattr(test, "_smp_examples_halved", False):
        return  # not a property test, or a parametrized one already seen
    if asked.max_examples > 100:
        setattr(test, _SETTINGS, settings(asked, max_examples=max(100, asked.max_examples // 2)))
    test._smp_examples_halved = True  # type: ignore[union-attr]


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection built (modules, test items, strategies) lives until the run ends: out
    of the garbage collector's sight, its full collections during the tests no longer walk
    those 100,000 objects each time (the collector's own time over 1,231 tests: 1.56 ->
    1.14 CPU-s). Reference counting frees them as before; no test's objects are frozen."""
    gc.collect()
    gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    thorough = os.environ.get("SMP_THOROUGH", "") not in ("", "0") or _slow_requested(config)
    for item in items:
        if item.nodeid.startswith(REALTIME_FILES):
            item.add_marker(pytest.mark.realtime)
        if not thorough:
            _fewer_examples(item)
    items.sort(key=_long_first)  # stable: each file's tests keep their order
    _longest_apart(items)
    if _slow_requested(config):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or SMP_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _station_dirs(tmp_path_factory) -> Iterator[Path]:
    """Fresh directories for each test, numbered here: `mktemp` lists the whole base
    directory per call, which made this autouse fixture quadratic in the number of tests."""
    base = tmp_path_factory.mktemp("station")
    return (base / str(n) for n in itertools.count())


@pytest.fixture(autouse=True)
def _no_station_config(_station_dirs, monkeypatch):
    """A developer's own station config (~/.config/smpdevice/config.toml) or SMP_* settings
    never change what a test sees; tests that want a config set SMP_CONFIG themselves..."""
    station = next(_station_dirs)
    (station / "cfg").mkdir(parents=True)
    (station / "data").mkdir()
    monkeypatch.setenv("SMP_CONFIG", str(station / "cfg" / "absent.toml"))
    # ...nor writes into the developer's own data directory (pass logs, smp.log).
    monkeypatch.setenv("SMP_DATA_DIR", str(station / "data"))
    for name in ("SMP_PORT", "SMP_SERVICE", "SMP_TECHNICIAN", "SMP_ENVELOPE",
                 "SMP_FOOTSWITCH", "SMP_SIM_CLOCK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _smp_key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(autouse=True)
def _test_installation_key(_smp_key_dir, monkeypatch):
    """Pass logs sign their heads with a key made for this test run, never the developer's
    own installation key (~/.config/smpdevice); subprocesses inherit it."""
    monkeypatch.setenv("SMP_KEY_DIR", str(_smp_key_dir))
