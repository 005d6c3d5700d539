"""Review 15 A5: a `should_stop` that raises once the pass is armed and recorded as begun
(a UI torn down, Ctrl-C landing in it) left the pass open in the log, and `close()` then
refused with PassLogError "still has 1 pass(es) in progress".

Promised (docs/safety.md): "Any exception during a pass (a broken display callback) stops
the needle and records the pass before it propagates"; docs/integration.md: Ctrl-C "stops
the needle, records the pass and re-raises", and `close()` records the summary.
"""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from tests.smpdevice.sessions.test_session import open_session, short_profile

pytestmark = pytest.mark.virtual_time


class _UiGone(Exception):
    pass


@pytest.mark.parametrize("error", [_UiGone, KeyboardInterrupt])
def test_should_stop_raising_once_armed_still_records_the_pass_and_closes(sim, pen, passlog,
                                                                         error):
    session = open_session(pen, passlog, short_profile(0.2, passes=2))
    asked = []

    def should_stop() -> bool:
        asked.append(pen.state)
        if len(asked) == 2:  # the second question: the pass is armed and recorded as begun
            raise error("the UI is gone")
        return False

    with pytest.raises(error):
        session.play(should_stop=should_stop)
    assert asked[1] is State.ARMED
    [record] = passlog.passes(session.session_id)
    assert record.outcome == "stopped", "the pass was left open in the log"
    assert sim.firmware.state is not FirmwareState.RUNNING
    if error is _UiGone:  # a broken program may never disarm it; Ctrl-C is a stop, replayed
        assert pen.state is State.IDLE, "the pen was left armed after the pass"
    summary, _sheet = session.close()  # was refused: "still has 1 pass(es) in progress"
    assert summary["passes"] == 1
    assert pen.state is State.IDLE
