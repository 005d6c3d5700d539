"""A clear while the pen has not yet confirmed the E-stop is refused (session 16; the root of a
console test that flaked in CI). The controller used to take it: the CLEAR_FAULTS got through
while ESTOP was still re-sent, the controller said idle, and the next ESTOP written latched the
pen again (or, never delivered, left the pen as it was). On the simulator's virtual clock; the
pen's answers come 2.5 s late, as to a host starved of the CPU: the ESTOP acts at once, its
confirmation comes after the controller's tries."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from smpdevice.control import PenController, State
from smpdevice.control.states import EStopUnconfirmed, StateError
from tests.smpdevice.virtual_time import virtual_sim

LATE_S = 2.5  # beyond the E-stop's own tries (4, at most 0.5 s each)
LEASE_MS = 2000  # the link is judged lost after about two leases of silence


def test_a_clear_before_the_estop_is_confirmed_is_refused_then_taken_once_it_is():
    with (virtual_sim(seed=5) as sim,
          PenController.connect(sim.url, clock=sim.clock, lease_ms=LEASE_MS) as pen):
        sim.link.config.delay_s = LATE_S
        with pytest.raises(EStopUnconfirmed):
            pen.estop()
        sim.link.config.delay_s = 0.0  # what is late stays late; what follows is at once
        assert sim.firmware.state is FirmwareState.ESTOP
        with pytest.raises(StateError, match="not confirmed it"):
            pen.clear_faults()
        assert pen.state is State.ESTOP
        # the late ACK ends the re-sending: a clear is taken now, and stays
        assert pen.estop_unconfirmed
        sim.time.wait_until(lambda: not pen.estop_unconfirmed, 2 * LATE_S,
                            "the pen's late confirmation")
        pen.clear_faults()
        assert pen.state is State.IDLE
        sim.time.sleep(LATE_S)
        assert sim.firmware.state is FirmwareState.IDLE
        assert pen.state is State.IDLE


def test_an_estop_the_pen_never_hears_keeps_the_clear_refused_with_advice_that_works():
    """Only ESTOP frames are lost (the rest flows): the loop re-sends it for as long as the link
    is up, every clear is refused, and the advice (close, check, connect again) can be
    followed: a new connection over the mended link E-stops and clears (review 16b: the advice
    said "reconnect", which a controller with a live link refuses)."""
    with virtual_sim(seed=5) as sim:
        with PenController.connect(sim.url, clock=sim.clock, lease_ms=LEASE_MS) as pen:
            sim.link.drop_inbound(MsgType.ESTOP)
            with pytest.raises(EStopUnconfirmed):
                pen.estop()
            sim.time.sleep(5.0)
            assert pen.state is State.ESTOP and pen.estop_unconfirmed
            with pytest.raises(StateError, match="close the connection") as refused:
                pen.clear_faults()
            assert "reconnect" not in str(refused.value)
        sim.link.clear_inbound()  # the cable checked
        with PenController.connect(sim.url, clock=sim.clock, lease_ms=LEASE_MS) as again:
            again.estop()
            assert not again.estop_unconfirmed
            assert sim.firmware.state is FirmwareState.ESTOP
            again.clear_faults()
            assert again.state is State.IDLE
