"""A report with a code the message catalogue does not define (a hostile pen, or a mismatched
one) is not used: before, TELEMETRY state 200 or EVENT 250 raised ValueError in the reader's
listener on every frame (a logged traceback each time, the report lost without a word), and a
NACK with an undefined reason raised a bare ValueError out of the request."""

from __future__ import annotations

import dataclasses

import pytest
import structlog.testing

from firmware_protocol.codes import EventCode, MsgType, NackReason
from firmware_protocol.frame import encode
from firmware_protocol.messages import Event, Nack, SetSetpoints
from smpdevice.control.controller import PenController
from smpdevice.control.news import undefined_code
from smpdevice.control.states import HandshakeError, State
from smpdevice.errors import SmpError
from tests.smpdevice.conftest import run_needle, true_calibration

pytestmark = pytest.mark.virtual_time


def _send_unsolicited(sim, message) -> None:
    """The simulated pen writes `message` as a report (seq 0) before its next frame."""
    sim.link.inject_junk(encode(message, 0))


def _no_tracebacks(logs: list[dict]) -> None:
    assert not [e for e in logs if "listener failed" in str(e.get("event"))], logs


def test_undefined_codes_in_reports_while_idle_are_ignored_and_logged_once(pen, sim):
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            _send_unsolicited(sim, Event(event=250, state=1, faults=0, uptime_ms=1))
            _send_unsolicited(sim, dataclasses.replace(sim.firmware.telemetry(), state=200))
        sim.time.sleep(0.3)
    _no_tracebacks(logs)
    warned = [e for e in logs if e.get("event") == "pen report with an undefined code ignored"]
    assert sorted(e["undefined"] for e in warned) == [
        "EVENT event 250 (no EventCode)", "TELEMETRY state 200 (no FirmwareState)"], warned
    assert pen.state is State.IDLE and pen.telemetry is not None
    assert pen.telemetry.state.value != 200


def test_an_undefined_state_while_running_stops_the_needle(pen, sim):
    pen.set_calibration(true_calibration(sim))
    run_needle(pen)
    assert pen.state is State.RUNNING
    with structlog.testing.capture_logs() as logs:
        _send_unsolicited(sim, dataclasses.replace(sim.firmware.telemetry(), state=200))
        pen.wait_for_state(State.FAULT, timeout_s=5.0)
    _no_tracebacks(logs)
    assert "TELEMETRY state 200 (no FirmwareState)" in pen.last_fault.reason
    assert "stopped the needle" in pen.last_fault.reason
    sim.time.wait_until(lambda: not sim.firmware.telemetry().flags & 0x01, 2.0)


def test_an_undefined_nack_reason_is_a_typed_error(pen):
    step = SetSetpoints(depth_um=500, speed_centihz=10000, duty_permille=400, period_us=100000)
    err = pen.nack_error(step, Nack(acked_type=int(MsgType.SET_SETPOINTS), reason=250, detail=0))
    assert isinstance(err, HandshakeError) and isinstance(err, SmpError)
    assert "reason code 250" in str(err) and "SET_SETPOINTS" in str(err)
    known = pen.nack_error(step, Nack(acked_type=int(MsgType.SET_SETPOINTS),
                                      reason=int(NackReason.OUT_OF_LIMITS), detail=250))
    assert "OUT_OF_LIMITS" in str(known)


def test_defined_codes_are_not_flagged():
    for code in EventCode:
        assert undefined_code(Event(event=int(code), state=1, faults=0, uptime_ms=0)) is None


def test_connect_still_works_after_the_checks(sim):
    with PenController.connect(sim.url, clock=sim.clock) as pen:
        assert pen.state is State.IDLE
