"""Review 14 (proto 3): a refused huge step wedged the simulator.

What was wrong: `sim.advance(1e308)` raised ValueError (the firmware cannot count that far in
milliseconds) but the shared `VirtualClock` had already moved to 1e308: every later write
raised, no E-stop got through and a running needle's lease never lapsed. docs/simulator.md
promises a refused step leaves the clock where it was. Now a simulator tells its clock how far
it can follow (`PenFirmware.max_time_s`) and the clock refuses a step past it before moving.
"""

from __future__ import annotations

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, FirmwareState, MsgType
from simulators import PenSimulator, VirtualClock
from simulators.testing import PenHost


def test_a_refused_huge_step_leaves_clock_and_pen_usable():
    sim = PenSimulator(seed=1, clock=VirtualClock())
    try:
        sim.advance(0.06)
        host = PenHost(sim.open_port())
        replies = host.start_needle(lease_ms=500)
        assert all(r.TYPE == MsgType.ACK for r in replies), replies
        before = sim.clock.now()
        for step in (1e308, 5e305):
            with pytest.raises(ValueError, match="dt_s"):
                sim.advance(step)
            with pytest.raises(ValueError, match="dt_s"):
                sim.clock.advance(step)  # whoever advances the shared clock
        assert sim.clock.now() == before, "the refused step moved the clock"
        assert host.request(m.EStop(), timeout_s=0.2).TYPE == MsgType.ACK
        assert sim.firmware.state is FirmwareState.ESTOP
    finally:
        sim.close()


def test_after_a_refused_step_the_lease_still_lapses():
    sim = PenSimulator(seed=1, clock=VirtualClock())
    try:
        sim.advance(0.06)
        host = PenHost(sim.open_port())
        assert all(r.TYPE == MsgType.ACK for r in host.start_needle(lease_ms=100))
        with pytest.raises(ValueError):
            sim.advance(1e308)
        sim.advance(0.2)
        assert sim.firmware.state is FirmwareState.FAULT
        assert sim.firmware.faults & Fault.LEASE_EXPIRED
    finally:
        sim.close()


def test_the_limit_goes_with_the_simulator():
    clock = VirtualClock()
    sim = PenSimulator(clock=clock)
    sim.close()
    assert clock.advance(1e308) == 1e308  # no pen on it any more: only floats bound it
