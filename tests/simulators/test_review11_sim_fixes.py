"""Review 11 (REVC C01-C05, C07): the simulator keeps the promises of docs/simulator.md and
docs/protocol.md for the inputs the reviewer found unguarded."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from firmware_protocol import messages as m
from firmware_protocol.codes import EventCode, LimitField, MsgType, NackReason
from firmware_protocol.codes import FirmwareState as S
from simulators import LinkFaultConfig, PenModel, PenSimulator, VirtualClock
from simulators.faults import FaultPlan, FaultSpecError, format_fault_spec, parse_fault_spec
from simulators.pen_model import calibration_error_from_seed
from tests.simulators.helpers import drive_to, make

SIMULATOR_MD = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


# ------------------------------------------------------------------ C01: CLEAR_FAULTS' EVENT
@pytest.mark.parametrize("target,cleared", [
    (S.IDLE, False), (S.ARMED, False), (S.RUNNING, False), (S.FAULT, True), (S.ESTOP, True)])
def test_clear_faults_sends_cleared_only_when_it_changes_the_state(target, cleared) -> None:
    """docs/protocol.md s7 (events table): CLEARED when 'CLEAR_FAULTS accepted and the state
    changes'; a plain ok otherwise. docs/simulator.md must say the same (it said CLEARED
    'also in IDLE with nothing latched')."""
    sim, host = drive_to(target)
    before = len(host.events)
    assert host.request(m.ClearFaults()) == m.Ack(int(MsgType.CLEAR_FAULTS))
    sim.advance(0.005)
    host.poll()
    events = [EventCode(e.event) for e in host.events[before:]]
    assert (EventCode.CLEARED in events) is cleared, events
    doc = " ".join(SIMULATOR_MD.read_text().split())
    assert "sends EVENT CLEARED (also in IDLE" not in doc
    assert "in IDLE, ARMED or RUNNING it is ACKed with no EVENT" in doc


# ------------------------------------------------------------------ C02: duty never above 1000
@pytest.mark.parametrize("duty,ok", [(1000, True), (1001, False), (1200, False)])
def test_a_hostile_duty_limit_never_lets_the_needle_run_above_100_percent(duty, ok) -> None:
    """protocol.md SET_SETPOINTS duty_permille: 'never above 1000 (DUTY)', whatever the pen's
    IDENTIFY says (a model with duty_max_pct 150 stands for a hostile pen)."""
    sim, host = make(duty_max_pct=150)
    reply = host.request(m.SetSetpoints(1000, 10000, duty, 100_000))
    if ok:
        assert reply == m.Ack(int(MsgType.SET_SETPOINTS))
        assert sim.firmware.duty_permille == duty
    else:
        assert reply == m.Nack(int(MsgType.SET_SETPOINTS), int(NackReason.OUT_OF_LIMITS),
                               int(LimitField.DUTY)), reply
        assert sim.firmware.duty_permille != duty


# ------------------------------------------------------------------ C03: type codes of a config
@pytest.mark.parametrize("field", ["drop_in", "delay_in"])
@pytest.mark.parametrize("codes,why", [((0x41,), "ACK"), ((200,), "no message type"),
                                       ((2, 2), "twice")])
def test_a_type_code_no_spec_can_name_is_refused_naming_the_field(field, codes, why) -> None:
    config = LinkFaultConfig(**{field: codes, "delay_in_s": 0.1})
    with pytest.raises(FaultSpecError, match=rf"{field} type .*{why}"):
        PenSimulator(clock=VirtualClock(), link_faults=config)
    with pytest.raises(FaultSpecError, match=field):
        format_fault_spec(FaultPlan(link=config))  # a FaultSpecError, never a bare ValueError


@pytest.mark.parametrize("codes", [(MsgType.ESTOP,), (2, 8, 1), tuple(range(1, 16))])
def test_every_config_the_simulator_takes_formats_to_a_spec_that_parses_back(codes) -> None:
    config = LinkFaultConfig(drop_in=codes, delay_in=codes[:1], delay_in_s=0.25, drop_p=0.01)
    PenSimulator(clock=VirtualClock(), link_faults=config).close()
    back = parse_fault_spec(format_fault_spec(FaultPlan(link=config))).link
    assert (back.drop_in, back.delay_in, back.delay_in_s, back.drop_p) == (
        tuple(codes), tuple(codes[:1]), 0.25, 0.01)


# ------------------------------------------------------------------ C04: serial
@pytest.mark.parametrize("serial", ["SMP-ÄÖ", "SMP-0123456789", "SMP-\u200b", 12])
def test_a_serial_that_does_not_fit_identify_is_a_value_error_naming_it(serial) -> None:
    with pytest.raises(ValueError, match="serial=") as info:
        PenSimulator(model=PenModel(serial=serial), clock=VirtualClock())
    assert not isinstance(info.value, UnicodeError)
    assert "at most 12 ASCII characters" in str(info.value)


def test_a_serial_changed_after_the_model_was_made_is_checked_by_the_simulator() -> None:
    model = PenModel(serial="SMP-1")
    model.serial = "SMP-é"
    with pytest.raises(ValueError, match="serial="):
        PenSimulator(model=model, clock=VirtualClock())


def test_a_twelve_character_serial_is_what_identify_says() -> None:
    sim, host = make(serial="SMP-ABCDEFGH")
    identity = host.request(m.IdentifyRequest())
    assert identity.serial_str == "SMP-ABCDEFGH"
    sim.close()


# ------------------------------------------------------------------ C05: clock overflow
def test_a_step_that_would_make_the_clock_infinite_is_refused_and_time_stays() -> None:
    clock = VirtualClock(start_s=1e308)
    with pytest.raises(ValueError, match="dt_s"):
        clock.advance(1e308)
    assert clock.now() == 1e308
    assert clock.advance(1.0) == 1e308  # a finite step still works (1 s is below 1e308's ulp)


def test_a_pen_on_a_clock_refusing_an_overflowing_step_keeps_running() -> None:
    clock = VirtualClock(start_s=1.7e308)
    with PenSimulator(clock=clock) as sim:
        with pytest.raises(ValueError, match="dt_s"):
            clock.advance(1e308)
        assert math.isfinite(sim.clock.now())


# ------------------------------------------------------------------ C07: hidden calibration
@pytest.mark.parametrize("field,value", [("gain", -1.0), ("gain", 0.0), ("offset_mm", -0.3),
                                         ("offset_mm", -1.0)])
def test_an_impossible_hidden_calibration_is_refused_not_replaced(field, value) -> None:
    with pytest.raises(ValueError, match=rf"PenModel {field}=.* out of range"):
        PenSimulator(model=PenModel(**{field: value}), clock=VirtualClock())


def test_a_given_calibration_is_used_as_given_and_none_means_the_seeds() -> None:
    offset_mm, gain = calibration_error_from_seed(7)
    assert (PenModel(seed=7).offset_mm, PenModel(seed=7).gain) == (offset_mm, gain)
    given = PenModel(seed=7, offset_mm=0.0, gain=1.25)
    assert (given.offset_mm, given.gain) == (0.0, 1.25)  # 0.0 is a value, not "from the seed"
    PenSimulator(model=given, clock=VirtualClock()).close()
