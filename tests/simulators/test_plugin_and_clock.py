"""The pytest plugin's fixtures and the shared virtual clock."""

from __future__ import annotations

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState as S
from firmware_protocol.codes import NackReason as R
from simulators import PenSimulator, RealClock, VirtualClock


def test_pen_sim_is_booted_and_virtual(pen_sim: PenSimulator, pen_host) -> None:
    assert pen_sim.virtual and pen_sim.firmware.state is S.IDLE
    assert pen_host.request(m.Arm()).reason == R.NO_SETPOINTS


@pytest.mark.pensim(seed=7, lease_max_ms=500, faults="dup=1")
def test_pensim_marker_configures_the_pen(pen_sim: PenSimulator, pen_host) -> None:
    assert pen_sim.seed == 7 and pen_sim.model.lease_max_ms == 500
    assert pen_host.request(m.LeaseRenew(501)).reason == R.OUT_OF_LIMITS
    pen_host.poll()
    assert pen_sim.link.stats["duplicated_frames"] >= 1


def test_advancing_the_shared_clock_drives_the_pen() -> None:
    clock = VirtualClock()
    sim = PenSimulator(clock=clock)
    clock.advance(0.05)  # whoever advances the clock (a host under test) moves the pen
    assert sim.firmware.state is S.IDLE and sim.firmware.now_ms == 50
    sim.close()
    clock.advance(1.0)  # a closed simulator no longer listens
    assert sim.firmware.now_ms == 50
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_real_clock_is_monotonic() -> None:
    clock = RealClock()
    a = clock.now()
    assert clock.now() >= a and not clock.is_virtual


def test_two_simulators_cannot_share_a_name() -> None:
    with PenSimulator(clock=VirtualClock(), name="twin"), pytest.raises(ValueError):
        PenSimulator(clock=VirtualClock(), name="twin")
