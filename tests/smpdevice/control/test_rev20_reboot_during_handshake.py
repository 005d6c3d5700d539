"""Review 20 (left: the fix is in smpdevice/control/connection.py, not helper A's file). A
brownout right after the handshake's SET_TELEMETRY_RATE was ACKed, on a pen whose boot rate
is 0 (pensim `telemetry=0`): the pen comes up FAULT POWER_RESET reporting nothing, and
connect() fails with "the pen sends no telemetry; check the cable and the pen". It rebooted:
the handshake should ask the rate again (once) when it saw EVENT BOOTED or a NACK BOOTING
after its rate was set, then connect `fault` (POWER_RESET) as for any rebooted pen.
Place: tests/smpdevice/control/."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import Fault, MsgType
from simulators import PenSimulator, VirtualClock
from simulators.link_faults import LinkFaultConfig
from simulators.pen_model import PenModel
from simulators.testing import PenHost
from smpdevice.control import PenController
from smpdevice.control.states import State
from tests.simulators.helpers import VALID_SETPOINTS
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import TimeDriver, virtual_sim

pytestmark = pytest.mark.virtual_time


def test_a_reboot_right_after_the_rate_is_set_connects_latched_not_blind():
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=0)) as sim:
        box: list[object] = []

        def go() -> None:
            try:
                box.append(PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                                 calibration=true_calibration(sim)))
            except Exception as exc:  # the verdict is asserted below
                box.append(exc)

        th = threading.Thread(target=go)
        with sim.time.held_from(lambda: sim.firmware.telemetry_hz == 100, timeout_s=5,
                                start=th.start):
            sim.inject("brownout")
        th.join(timeout=30)
        pen = box[0]
        assert isinstance(pen, PenController), f"connect failed: {pen}"
        try:
            assert pen.state is State.FAULT
            assert pen.last_fault is not None and Fault.POWER_RESET in pen.last_fault.faults
            assert sim.firmware.telemetry_hz == 100
        finally:
            pen.close()


# ---- a brownout at each step of the handshake, on a pen whose boot rate is 0 or not

ASKED_HZ = 50  # the boot rate of neither pen: a rate left at the boot default shows
# a request arriving late, so the brownout lands before it: inside the 50 ms boot
LATE = {"identify": LinkFaultConfig(delay_in=(int(MsgType.SET_TELEMETRY_RATE),),
                                    delay_in_s=0.01),
        "needle stop": LinkFaultConfig(delay_in=(int(MsgType.DISARM),), delay_in_s=0.02)}
_When = Callable[[PenSimulator, PenController], Callable[[], bool]]


def _executed(mtype: MsgType) -> _When:
    return lambda sim, pen: lambda: sim.firmware.executed[mtype] > 0


def _report_after_rate(sim: PenSimulator, pen: PenController) -> Callable[[], bool]:
    """The host holds a report the pen sent after it took the rate (a pen whose boot rate is
    not 0 reported before it too)."""
    since: list[float] = []

    def seen() -> bool:
        if not since and sim.firmware.telemetry_hz == ASKED_HZ:
            since.append(sim.clock.now())
        t = pen.telemetry
        return bool(since) and t is not None and t.received_at_s > since[0]
    return seen


STEPS: dict[str, tuple[bool, _When]] = {
    # step: (the pen runs a dead host's pass at connect, when the brownout comes)
    "identify": (False, _executed(MsgType.IDENTIFY_REQUEST)),  # its rate refused BOOTING
    "rate": (False, _executed(MsgType.SET_TELEMETRY_RATE)),
    "first report": (False, _report_after_rate),
    "needle stop": (True, _executed(MsgType.NEEDLE_STOP)),  # its DISARM refused BOOTING
    "disarm": (True, _executed(MsgType.DISARM)),
}
# the handshake sees the reboot before it judges the pen by a report: connected `fault`.
# Else (a report of the pen up came first) it is latched at its EVENT BOOTED, after.
AT_CONNECT = {("identify", 0), ("identify", 100), ("rate", 0), ("needle stop", 0),
              ("needle stop", 100)}


@pytest.mark.parametrize("boot_hz", [0, 100])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_brownout_at_any_step_of_the_handshake_ends_latched_and_named(step, boot_hz):
    running, when = STEPS[step]
    clock = VirtualClock()
    model = PenModel(seed=20, telemetry_default_hz=boot_hz)
    with PenSimulator(model=model, clock=clock, link_faults=LATE.get(step)) as sim:
        sim.advance(0.06)
        if running:  # a host died with its needle running, its lease still on
            port = sim.open_port()
            dead_host = PenHost(port)
            for message in (VALID_SETPOINTS, m.Arm(), m.LeaseRenew(2000), m.NeedleStart()):
                assert isinstance(dead_host.request(message), m.Ack)
            port.close()
        with TimeDriver(clock) as driver:
            pen = PenController(sim.url, clock=clock, telemetry_hz=ASKED_HZ,
                                calibration=true_calibration(sim))
            box: list[object] = []

            def go() -> None:
                try:
                    pen.open()
                    box.append(pen)
                except Exception as exc:  # the verdict is asserted below
                    box.append(exc)

            th = threading.Thread(target=go)
            with driver.held_from(when(sim, pen), timeout_s=5, start=th.start):
                sim.inject("brownout")
            th.join(timeout=30)
            try:
                outcome = box[0]
                assert not isinstance(outcome, Exception), f"connect failed: {outcome}"
                if (step, boot_hz) in AT_CONNECT:
                    assert pen.state is State.FAULT, (pen.state, pen.last_fault)
                driver.wait_until(lambda: pen.state is State.FAULT, 1.0, "the reboot latched")
                fault = pen.last_fault
                assert fault is not None and Fault.POWER_RESET in fault.faults, fault
                assert "rebooted" in str(fault), str(fault)  # never a jam to look for
                pen.clear_faults()  # the technician acknowledges the reset
                assert pen.state is State.IDLE
                assert sim.firmware.telemetry_hz == ASKED_HZ  # never left at its boot rate
                seen = pen.telemetry
                driver.wait_until(lambda: pen.telemetry is not seen, 1.0, "a report after")
            finally:
                pen.close()
