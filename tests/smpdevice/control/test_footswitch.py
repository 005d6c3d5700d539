"""The footswitch as an enabling device (issue 15 part 4), controller side: the real simulator
over pensim:// byte streams, on its virtual clock.

`required`: the pen refuses a start with the pedal up and stops the needle within one firmware
tick of a release; the controller follows it to `armed`, the pass ends `footswitch_released`,
and pressing again never restarts the needle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocol.codes import Capability, EventCode, FirmwareState, FootswitchMode, NackReason
from firmware_protocol.messages import Event
from simulators import PenModel, PenSimulator
from smpdevice.control import PenController, State
from smpdevice.control.footswitch import FootswitchError
from smpdevice.link import CommandRefused
from tests.smpdevice.conftest import CROWN, true_calibration
from tests.smpdevice.virtual_time import virtual_sim, wait_until

pytestmark = pytest.mark.virtual_time


def connect(sim: PenSimulator, footswitch: str | None = "required") -> PenController:
    return PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                 clock=sim.clock, footswitch=footswitch)


def arm(pen: PenController) -> None:
    pen.set_zone("crown")
    pen.set_setpoints(**CROWN)
    pen.arm()


def test_required_release_mid_pass_stops_within_one_tick_and_never_restarts(sim):
    events: list[Event] = []
    with connect(sim) as pen:
        pen.add_event_listener(events.append)
        arm(pen)
        assert sim.firmware.footswitch_mode is FootswitchMode.REQUIRED  # sent before ARM
        pen.start_needle()
        sim.time.sleep(0.3)
        assert pen.state is State.RUNNING
        with sim._cond:  # no tick between the release and the reading of the pen's clock
            sim.release_pedal()
            released_at_ms = sim.firmware.uptime_ms
        pen.wait_for_state(State.ARMED, timeout_s=1.0)
        assert pen.stopped_by_footswitch and pen.last_fault is None
        wait_until(sim, lambda: any(e.event == EventCode.FOOTSWITCH_RELEASED for e in events))
        stop = next(e for e in events if e.event == EventCode.FOOTSWITCH_RELEASED)
        assert stop.uptime_ms - released_at_ms == 1  # the pen's next 1 ms tick stopped it
        assert FirmwareState(stop.state) is FirmwareState.ARMED

        sim.press_pedal()
        sim.time.sleep(0.5)  # pressing again starts nothing, on either side
        assert pen.state is State.ARMED and sim.firmware.state is FirmwareState.ARMED
        assert pen.telemetry is not None and pen.telemetry.footswitch
        pen.start_needle()  # the next start is an explicit request
        assert pen.state is State.RUNNING and not pen.stopped_by_footswitch
        pen.stop_needle()


def test_required_start_with_the_pedal_up_is_refused_and_stays_armed(sim):
    with connect(sim) as pen:
        arm(pen)
        sim.release_pedal()
        with pytest.raises(CommandRefused, match="FOOTSWITCH_UP") as refused:
            pen.start_needle()
        assert refused.value.reason is NackReason.FOOTSWITCH_UP
        assert pen.state is State.ARMED and sim.firmware.state is FirmwareState.ARMED
        sim.press_pedal()
        pen.start_needle()
        assert pen.state is State.RUNNING
        pen.stop_needle()


def test_a_lost_release_event_is_read_from_the_report(sim):
    with connect(sim) as pen:
        arm(pen)
        pen.start_needle()
        with sim._cond:  # the next frame the pen writes is the EVENT: lose it
            sim.release_pedal()
            sim.link.drop_next_frames(1)
        pen.wait_for_state(State.ARMED, State.FAULT, timeout_s=1.0)
        assert pen.state is State.ARMED and pen.stopped_by_footswitch
        assert sim.link.stats["dropped_frames"] == 1


@pytest.mark.parametrize("mode", ["optional", "off"])
def test_optional_and_off_never_stop_the_needle(sim, mode):
    with connect(sim, mode) as pen:
        arm(pen)
        assert sim.firmware.footswitch_mode is FootswitchMode[mode.upper()]
        pen.start_needle()
        sim.release_pedal()
        sim.time.sleep(0.3)
        assert pen.state is State.RUNNING and sim.firmware.state is FirmwareState.RUNNING
        assert pen.telemetry is not None and not pen.telemetry.footswitch  # still shown
        pen.stop_needle()
        assert not pen.stopped_by_footswitch


def test_required_on_a_pen_without_a_footswitch_is_refused_at_connect():
    with virtual_sim(model=PenModel(seed=7, footswitch_fitted=False)) as sim:
        with pytest.raises(FootswitchError) as refused:
            connect(sim, "required")
        text = str(refused.value)
        assert "footswitch=required" in text and sim.serial in text
        assert "SMP_FOOTSWITCH" in text and "optional" in text  # how to change it
        with connect(sim, "optional") as pen:  # the same pen under another setting: fine
            assert Capability.FOOTSWITCH not in pen.identity.capabilities
            arm(pen)
            pen.start_needle()
            assert pen.state is State.RUNNING
            pen.stop_needle()


def test_the_mode_comes_from_the_station_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SMP_FOOTSWITCH", "Required")
    assert PenController("pensim://nobody").footswitch == "required"
    monkeypatch.delenv("SMP_FOOTSWITCH")
    config = tmp_path / "config.toml"
    config.write_text('footswitch = "off"\n')
    monkeypatch.setenv("SMP_CONFIG", str(config))
    assert PenController("pensim://nobody").footswitch == "off"
    assert PenController("pensim://nobody", footswitch="optional").footswitch == "optional"


@pytest.mark.parametrize("bad", ["yes", "", 2, True, "required\n", " off", b"off"])
def test_a_bad_mode_is_refused_naming_the_allowed_values(bad):
    with pytest.raises(FootswitchError, match="footswitch=.*required, optional, off"):
        PenController("pensim://nobody", footswitch=bad)


def test_a_session_records_the_mode_and_a_release_ends_the_pass_footswitch_released(tmp_path):
    from smpdevice.passlog import PassLog, PassOutcome
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    from tests.smpdevice.sessions.test_session import CLEAR, short_profile

    # the simulated technician lifts the foot 1.0 s after the pen started (mid first pass)
    with virtual_sim(seed=7, link_faults="pedal_up@1.0") as sim, \
            PassLog.open(tmp_path / "passlog.sqlite") as passlog, connect(sim) as pen:
        session = TreatmentSession.open(pen, passlog, short_profile(3.0), technician="ana",
                                        screening=parse_screening(CLEAR))
        results = session.play()
        summary, _ = session.close()
        assert [r.outcome for r in results] == [PassOutcome.footswitch_released]
        assert "footswitch was released" in results[0].detail
        assert results[0].stats.strokes > 0  # it ran, then stopped: the figures up to the stop
        logged = passlog.passes(session.session_id)
        assert [p.outcome for p in logged] == ["footswitch_released"]
        assert passlog.session(session.session_id).footswitch == "required"
        assert summary["outcome"] == "interrupted"  # the technician's act, not a fault
        assert sim.firmware.state is not FirmwareState.RUNNING and passlog.verify() is None


def test_the_controller_and_the_config_file_know_the_same_modes():
    from smpdevice import config
    from smpdevice.control import FOOTSWITCH_MODES

    assert FOOTSWITCH_MODES == config.FOOTSWITCH_MODES


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(max_size=20), st.integers(), st.none(), st.binary(max_size=8)))
def test_any_value_is_a_mode_or_a_typed_refusal(value):
    from smpdevice.control.footswitch import footswitch_setting

    if value is None:
        assert footswitch_setting(value) == "optional"  # the tests' station has no config
    elif isinstance(value, str) and value.lower() in ("required", "optional", "off"):
        assert footswitch_setting(value) == value.lower()
    else:
        with pytest.raises(FootswitchError, match="footswitch="):
            footswitch_setting(value)
