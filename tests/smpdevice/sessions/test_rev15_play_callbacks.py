"""Review 15 A8: `play(on_progress=5)` armed the pen, recorded pass 1 and started the needle
before failing with a bare TypeError; `should_stop=5` was a bare TypeError too.

Promised: docs/integration.md "Errors": `InvalidArgument` for an argument of the wrong type,
named in the message, "Nothing was sent".
"""

from __future__ import annotations

import pytest

from firmware_protocol.codes import MsgType
from smpdevice.checks import InvalidArgument
from smpdevice.control import State
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


@pytest.mark.parametrize("call", ["play", "run_pass"])
@pytest.mark.parametrize("callback", ["on_progress", "should_stop"])
@pytest.mark.parametrize("value", [5, "stop", object()])
def test_a_callback_that_is_not_callable_is_refused_before_anything_is_sent(
        sim, pen, passlog, call, callback, value):
    profile = short_profile(0.3, passes=2)
    session = open_session(pen, passlog, profile)
    executed = dict(sim.firmware.executed)
    args = () if call == "play" else (profile.plan[0],)
    with pytest.raises(InvalidArgument, match=callback):
        getattr(session, call)(*args, **{callback: value})
    assert passlog.passes(session.session_id) == []
    assert pen.state is State.IDLE
    for kind in (MsgType.ARM, MsgType.NEEDLE_START):
        assert sim.firmware.executed.get(kind, 0) == executed.get(kind, 0), kind
    assert [r.outcome.value for r in session.play()] == ["completed", "completed"]  # still playable
