"""Review 20: a reboot while calibrating speed, and a reboot told only by the telemetry (its EVENT
BOOTED lost). Real simulator (its BOOTED event suppressed where said), virtual time."""

from __future__ import annotations

import threading

import pytest

from firmware_protocol.codes import EventCode, Fault
from simulators.pen_model import PenModel
from smpdevice.control import PenController
from smpdevice.control.states import State
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.virtual_time import after, virtual_sim

pytestmark = pytest.mark.virtual_time

SP = {"depth_mm": 0.5, "speed_hz": 100.0, "duty_pct": 50.0, "period_ms": 100.0}


def _lose_booted(sim) -> None:
    fw = sim.firmware
    original = fw._event

    def event(code):
        if code == EventCode.BOOTED:
            return  # lost on the wire
        original(code)

    fw._event = event


@pytest.mark.parametrize("event_lost", [False, True], ids=["booted-event", "event-lost"])
@pytest.mark.parametrize("at_s", [0.3, 0.95, 0.99])
def test_a_reboot_during_the_speed_check_is_never_a_measured_speed(event_lost, at_s):
    with virtual_sim(seed=20) as sim, PenController.connect(
            sim.url, clock=sim.clock, calibration=true_calibration(sim)) as pen:
        if event_lost:
            _lose_booted(sim)
        pen.begin_calibration()
        out: list[object] = []

        def spin():
            try:
                out.append(pen.calibration_spin(100.0, 1.0))
            except Exception as exc:
                out.append(exc)

        th = threading.Thread(target=spin)
        th.start()
        after(sim.clock, at_s, lambda: sim.inject("brownout"))
        sim.time.wait_until(lambda: not th.is_alive(), what="the spin returned", timeout_s=10)
        assert out and isinstance(out[0], SmpError), f"a speed measured across a reboot: {out}"
        sim.time.sleep(0.3)
        assert pen.state is State.FAULT, (pen.state, out)
        assert pen.last_fault is not None and Fault.POWER_RESET in pen.last_fault.faults


def test_a_reboot_told_only_by_telemetry_is_latched_and_its_clear_asks_the_rate():
    with virtual_sim(seed=20, model=PenModel(telemetry_default_hz=20)) as sim, \
            PenController.connect(sim.url, clock=sim.clock, telemetry_hz=100,
                                  calibration=true_calibration(sim)) as pen:
        _lose_booted(sim)
        pen.set_zone("crown")
        sim.time.sleep(0.2)
        sim.inject("brownout")
        sim.time.wait_until(lambda: pen.state is State.FAULT, what="the reboot latched",
                            timeout_s=5)
        named = str(pen.last_fault)
        sim.time.sleep(0.2)
        pen.clear_faults()
        assert sim.firmware.telemetry_hz == 100  # (holds: the report's restart is seen)
        # named as the reboot it is, as the EVENT BOOTED and a NACK BOOTING are (docs/safety.md)
        assert "reboot" in named, named
