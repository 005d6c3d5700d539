"""`PenController.replay_at(wall)` given anything but an aware datetime: a typed
InvalidArgument naming `wall` (it was a bare TypeError), checked before anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smpdevice.checks import InvalidArgument
from smpdevice.control.states import StateError
from smpdevice.errors import SmpError

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("wall", ["2026-11-29T10:00:00Z", 1_764_000_000.0, None,
                                  datetime(2026, 11, 29, 10, 0)])  # the last: no time zone
def test_replay_at_refuses_a_wrong_wall_naming_it(pen, wall):
    before = pen.record_now()
    with pytest.raises(InvalidArgument, match=r"wall=.*refused.*time zone") as refused:
        pen.replay_at(wall)
    assert isinstance(refused.value, SmpError) and "Correct wall" in str(refused.value)
    assert pen.record_now() >= before  # the record time was not moved


def test_replay_at_on_a_live_pen_is_still_a_state_error(pen):
    with pytest.raises(StateError, match="replay"):
        pen.replay_at(datetime.now(UTC))
