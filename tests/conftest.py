"""Suite-wide hooks: `slow` tests (the fault campaign) run only when asked for.

    .venv/bin/pytest -m slow        # or SMP_SLOW=1 .venv/bin/pytest
"""

from __future__ import annotations

import os

import pytest


def _slow_requested(config: pytest.Config) -> bool:
    if os.environ.get("SMP_SLOW", "") not in ("", "0"):
        return True
    markexpr = config.getoption("markexpr", default="") or ""
    return "slow" in markexpr and "not slow" not in markexpr


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
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
