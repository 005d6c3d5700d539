"""Fixtures of the session tests: a pass log, and the states a controller went through."""

from __future__ import annotations

import pytest

from smpdevice.control import State
from smpdevice.passlog import PassLog


@pytest.fixture
def passlog(tmp_path):
    with PassLog.open(tmp_path / "passlog.sqlite") as log:
        yield log


def states_seen(pen) -> list[State]:
    """Every state `pen` enters from now on, as its state listeners are told."""
    seen: list[State] = []
    pen.add_state_listener(lambda old, new, reason: seen.append(new))
    return seen
