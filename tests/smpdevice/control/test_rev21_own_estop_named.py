"""Session 21: an E-stop this host asked for is recorded as "E-stop requested by the host",
also when the pen's answer reaches the controller's loop first.

estop() writes the ESTOP before it latches the controller (the frame first: the stop never
waits for bookkeeping), so on a loaded machine the loop could take the pen's EVENT
ESTOP_LATCHED first and latch "the pen latched an E-stop": a session's record then blamed the
pen for the technician's button (busy CI: the first of three E-stops while a session was
opened). The loop's turn is forced first here; virtual time, the real simulator.
"""

from __future__ import annotations

import pytest

from firmware_protocol import encode
from firmware_protocol.messages import EStop
from smpdevice.control import State
from tests.smpdevice.conftest import CROWN, run_needle

pytestmark = pytest.mark.virtual_time


def test_an_estop_answered_before_this_thread_latched_is_named_the_hosts(sim, pen):
    run_needle(pen)
    latch = pen._latch_locally
    seen: list[str] = []

    def late_latch(trigger: str, reason: str, tell_loop: bool = True) -> bool:
        # this thread is preempted after the ESTOP's write: the loop reads the answer first
        if trigger == "estop_latched":
            assert pen._wait_news(lambda: pen.state is State.ESTOP, 5.0)
            seen.append(pen.last_fault.reason if pen.last_fault else "")
        return latch(trigger, reason, tell_loop)

    pen._latch_locally = late_latch  # type: ignore[method-assign]
    pen.estop()
    assert pen.state is State.ESTOP
    assert seen == ["E-stop requested by the host"]
    assert pen.last_fault is not None and pen.last_fault.reason == "E-stop requested by the host"


def test_an_estop_the_pen_latched_by_itself_is_still_the_pens(sim, pen):
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    tap = sim.open_port()  # another host on the pen: not this host's request
    tap.write(encode(EStop(), 77))
    assert pen._wait_news(lambda: pen.state is State.ESTOP, 5.0)
    assert pen.last_fault is not None and pen.last_fault.reason == "the pen latched an E-stop"
