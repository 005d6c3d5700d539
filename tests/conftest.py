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
