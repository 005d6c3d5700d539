"""R2 (review 20): the clear that re-asks the telemetry rate after a reboot.

Real simulator, real bytes, virtual time."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from simulators.pen_model import PenModel
from smpdevice.control import PenController
from smpdevice.control.states import State
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _rebooted(sim, pen) -> None:
    pen.set_zone("crown")
    pen.set_setpoints(**SP)
    pen.arm()
    pen.start_needle()
    sim.time.sleep(0.2)
    sim.inject("brownout")
    sim.time.wait_until(lambda: pen.state is State.FAULT, what="the reboot latched")
    sim.time.sleep(0.2)


def _clear_in_thread(pen):
    box: list = []

    def run():
        try:
            pen.clear_faults()
            box.append("ok")
        except BaseException as exc:
            box.append(exc)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, box


def test_an_estop_while_the_clears_rate_is_in_flight_stays_an_estop():
    """ClearFaults ACKed, SET_TELEMETRY_RATE on its way (delayed on the wire): the technician
    presses E-stop. The pen gets CLEAR, ESTOP, then the rate (in that order): it is in ESTOP.
    The host must never say idle (nor stop re-sending / holding the lease) after that."""
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=0)) as sim, \
            PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                  calibration=true_calibration(sim)) as pen:
        _rebooted(sim, pen)
        sim.link.delay_inbound(0.3, MsgType.SET_TELEMETRY_RATE)
        th, box = _clear_in_thread(pen)
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.IDLE,
                            what="the pen cleared")
        pen.estop()
        assert pen.state is State.ESTOP
        sim.time.wait_until(lambda: not th.is_alive(), what="the clear returned")
        sim.link.clear_inbound()
        sim.time.sleep(0.5)
        assert sim.firmware.state is FirmwareState.ESTOP
        assert pen.state is State.ESTOP, (pen.state, box, pen.last_fault)


def test_a_clear_whose_rate_is_lost_leaves_the_controller_latched_then_a_second_clear_works():
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=0)) as sim, \
            PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                  calibration=true_calibration(sim)) as pen:
        _rebooted(sim, pen)
        sim.link.drop_inbound(MsgType.SET_TELEMETRY_RATE)
        with pytest.raises(SmpError):
            pen.clear_faults()
        assert pen.state is State.FAULT, pen.state  # never idle with a blind pen
        sim.link.clear_inbound()
        sim.time.sleep(0.2)
        pen.clear_faults()
        assert pen.state is State.IDLE
        assert sim.firmware.telemetry_hz == 100
        pen.set_setpoints(**SP)
        pen.arm()
        pen.start_needle()
        sim.time.sleep(1.5)
        assert pen.state is State.RUNNING, pen.last_fault
        pen.stop_needle()


def test_a_reboot_during_the_clear_is_latched_again():
    """The pen reboots again while the clear's rate is in flight: the clear must not leave
    the controller idle over a pen that is booting / reporting at 0 Hz."""
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=0)) as sim, \
            PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                  calibration=true_calibration(sim)) as pen:
        _rebooted(sim, pen)
        sim.link.delay_inbound(0.3, MsgType.SET_TELEMETRY_RATE)
        th, box = _clear_in_thread(pen)
        sim.time.wait_until(lambda: sim.firmware.state is FirmwareState.IDLE,
                            what="the pen cleared")
        sim.inject("brownout")
        sim.time.wait_until(lambda: not th.is_alive(), what="the clear returned", timeout_s=10)
        sim.link.clear_inbound()
        sim.time.sleep(1.0)
        if pen.state is State.IDLE:
            # idle is acceptable only with a pen that reports at the asked rate again
            assert sim.firmware.telemetry_hz == 100, (box, sim.firmware.telemetry_hz)
            pen.set_setpoints(**SP)
            pen.arm()
            pen.start_needle()
            sim.time.sleep(1.5)
            assert pen.state is State.RUNNING, pen.last_fault
            pen.stop_needle()
        else:
            assert pen.state is State.FAULT, (pen.state, box)
