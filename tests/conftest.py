"""Suite-wide hooks: `slow` tests (the fault campaign) run only when asked for.

    .venv/bin/pytest -m slow        # or SMP_SLOW=1 .venv/bin/pytest

`make test` runs the suite in two passes: every test not marked `realtime` spread over both
cores (pytest-xdist, `-n 2`), then the `realtime` ones alone, so their wall-clock deadlines never
share a core with another test. SMP_TEST_CPU=FILE appends each test's CPU seconds (this process
and the children it waited for) to FILE: where the suite's time goes, beyond `--durations`.
"""

from __future__ import annotations

import os

import pytest


def _slow_requested(config: pytest.Config) -> bool:
    if os.environ.get("SMP_SLOW", "") not in ("", "0"):
        return True
    markexpr = config.getoption("markexpr", default="") or ""
    return "slow" in markexpr and "not slow" not in markexpr


if os.environ.get("SMP_TEST_CPU"):
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
        before = _cpu_s()
        yield
        with open(os.environ["SMP_TEST_CPU"], "a") as report:
            report.write(f"{_cpu_s() - before:8.2f} {item.nodeid}\n")


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# Tests marked `realtime` here rather than in their files: a browser and a service whose
# in-process simulated pen runs on wall time with a 300 ms lease. Beside another test on a
# loaded machine the starved simulator lets that lease lapse (the fail-safe working) and the
# page never sees `running`; alone, they hold.
REALTIME_DIRS = ("tests/smpdevice/console/",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(REALTIME_DIRS):
            item.add_marker(pytest.mark.realtime)
    if _slow_requested(config):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or SMP_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_station_config(tmp_path_factory, monkeypatch):
    """A developer's own station config (~/.config/smpdevice/config.toml) or SMP_* settings
    never change what a test sees; tests that want a config set SMP_CONFIG themselves..."""
    monkeypatch.setenv("SMP_CONFIG", str(tmp_path_factory.mktemp("cfg") / "absent.toml"))
    # ...nor writes into the developer's own data directory (pass logs, smp.log).
    monkeypatch.setenv("SMP_DATA_DIR", str(tmp_path_factory.mktemp("data")))
    for name in ("SMP_PORT", "SMP_TECHNICIAN", "SMP_ENVELOPE", "SMP_FOOTSWITCH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def _smp_key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(autouse=True)
def _test_installation_key(_smp_key_dir, monkeypatch):
    """Pass logs sign their heads with a key made for this test run, never the developer's
    own installation key (~/.config/smpdevice); subprocesses inherit it."""
    monkeypatch.setenv("SMP_KEY_DIR", str(_smp_key_dir))
