"""Connecting to a pen whose last host died with its needle running, at the moment that host's
lease runs out (review 11, seen once by a reviewer in 23 `smp clear` runs after a SIGKILLed
`smp run`): the connect's own NEEDLE_STOP and DISARM arrived after the pen had latched
LEASE_EXPIRED, the pen refused the DISARM (FAULT_LATCHED), and the connect failed, so `smp
clear` could not clear the very fault it was run for. The pen is at rest: the controller now
connects faulted, as if the pen had latched before. On the virtual clock, the controller's
NEEDLE_STOP delayed past the dead host's lease by the link: it happens every time."""

from __future__ import annotations

from firmware_protocol import messages as m
from firmware_protocol.codes import FirmwareState, MsgType
from simulators import PenModel, PenSimulator, VirtualClock
from simulators.link_faults import LinkFaultConfig
from simulators.testing import PenHost
from smpdevice.control import PenController, State
from tests.simulators.helpers import VALID_SETPOINTS
from tests.smpdevice.virtual_time import TimeDriver


def test_a_pen_that_latches_as_it_is_connected_connects_faulted():
    clock = VirtualClock()
    late_stop = LinkFaultConfig(delay_in=(int(MsgType.NEEDLE_STOP), int(MsgType.DISARM)),
                                delay_in_s=0.2)  # past the dead host's 150 ms lease
    with PenSimulator(model=PenModel(seed=0), clock=clock, link_faults=late_stop) as sim:
        port = sim.open_port()
        dead_host = PenHost(port)
        sim.advance(0.06)
        dead_host.request(VALID_SETPOINTS)
        dead_host.request(m.Arm())
        dead_host.request(m.LeaseRenew(150))
        dead_host.request(m.NeedleStart())
        port.close()  # the host is gone, its lease still running
        with TimeDriver(clock), PenController.connect(sim.url, clock=clock) as pen:
            assert pen.state is State.FAULT, pen.state
            assert "LEASE_EXPIRED" in str(pen.last_fault), pen.last_fault
            pen.clear_faults()  # what `smp clear` is run for
            assert pen.state is State.IDLE
        assert sim.firmware.state is FirmwareState.IDLE
