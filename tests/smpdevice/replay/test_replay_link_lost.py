"""A lost pen link is an input, not a difference (review6 R04): a session that ended because
the pen's port failed (a pulled cable) records the loss on `/input` (`link_lost`, cause
`port`) and `smp replay` fails the recorded pen's port at the same point, so an unchanged
controller matches, plain or resumed after the lost pen. A silence the controller judged is
its own decision: recorded (cause `silence`), never fed. A changed reaction still differs.
Real sessions on the virtual-time simulator, real SQLite and recordings."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from smpdevice.cli import main
from smpdevice.control import PenController
from smpdevice.control.news import PenNewsMixin
from smpdevice.records.frames import read_recording
from smpdevice.replay.inputs import parse_input
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.replay.conftest import CLEAR, record_session, short_profile
from tests.smpdevice.virtual_time import after

pytestmark = pytest.mark.virtual_time


def inputs_of(path) -> list[dict]:
    return [json.loads(e.data) for e in read_recording(path).channel("/input")]


@pytest.fixture
def cable_pulled(sim, pen, passlog):
    after(sim.clock, 0.5, sim.disconnect)  # the cable is pulled in the second pass
    rec = record_session(pen, passlog)
    assert [p.outcome for p in passlog.passes(rec.session_id)][-1] == "link_lost"
    return rec


def test_the_loss_is_recorded_as_an_input(cable_pulled):
    (lost,) = [i for i in inputs_of(cable_pulled.path) if i["kind"] == "link_lost"]
    assert lost["cause"] == "port" and lost["state"] == "running", lost
    assert lost["reason"]  # what the controller said, shown (never parsed)


def test_a_session_whose_pen_link_was_lost_replays_as_a_match(cable_pulled):
    report = replay_session(cable_pulled.passlog, cable_pulled.session_id)
    assert report.match, (report.difference, report.notes)
    result = CliRunner().invoke(main, ["replay", cable_pulled.session_id, "--db",
                                       str(cable_pulled.passlog.path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("match: session"), result.output


def test_a_changed_reaction_to_the_loss_is_a_difference(cable_pulled, monkeypatch):
    """A version that takes a failed port for a pen fault (not a lost link) still differs:
    the loss is fed, what the controller makes of it is compared."""
    def as_a_fault(self, reason: str, silence: bool = False) -> None:
        self._enter_safe("fault_detected")

    monkeypatch.setattr(PenNewsMixin, "on_lost", as_a_fault)
    report = replay_session(cable_pulled.passlog, cable_pulled.session_id)
    assert not report.match
    assert report.difference.what in ("state", "command", "pass"), report.difference
    assert "disconnected" in report.difference.expected or report.difference.what != "state"


def test_without_the_recorded_input_the_replay_still_differs(cable_pulled, monkeypatch):
    """The input is what makes it match (a recording without it, as before this fix, is named
    at the recording's end as before): no loss is ever guessed."""
    monkeypatch.setattr("smpdevice.replay.script.parse_input",
                        lambda data, after, t_s: None if b"link_lost" in data
                        else parse_input(data, after, t_s))
    report = replay_session(cable_pulled.passlog, cable_pulled.session_id)
    assert not report.match


def test_a_silence_the_controller_judged_is_recorded_not_fed(sim, pen, passlog):
    """A pen that stops talking with its port still open: the controller decides the link is
    lost (silence); the replay's recorded pen falls silent there too and the replayed
    controller must decide the same by itself."""
    after(sim.clock, 0.5, lambda: sim.link.stall(sim.firmware.time_s()))
    rec = record_session(pen, passlog)
    assert [p.outcome for p in passlog.passes(rec.session_id)][-1] == "link_lost"
    (lost,) = [i for i in inputs_of(rec.path) if i["kind"] == "link_lost"]
    assert lost["cause"] == "silence", lost
    assert parse_input(json.dumps(lost).encode(), 3, 1.0) is None
    report = replay_session(passlog, rec.session_id)
    assert report.match, (report.difference, report.notes)


def test_a_session_resumed_after_a_lost_pen_replays_as_a_match(sim, passlog):
    """Cable pulled, the pen's lease lapses (LEASE_EXPIRED latched), cable back, the new
    connection clears the fault (an input before part 2: replayed) and resumes."""
    first_pen = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                      clock=sim.clock)
    first = TreatmentSession.open(first_pen, passlog, short_profile(0.4, passes=3),
                                  technician="ana", screening=parse_screening(CLEAR))
    after(sim.clock, 0.6, sim.disconnect)
    first.play()
    first.suspend()  # left open, as `smp run` leaves a lost pen's session
    first_pen.close()
    sim.reconnect()
    sim.time.wait_until(lambda: sim.firmware.uptime_ms > 1500, timeout_s=10.0)
    second_pen = PenController.connect(sim.url, calibration=true_calibration(sim),
                                       lease_ms=200, clock=sim.clock)
    try:
        assert second_pen.state.value == "fault"  # its lease lapsed while the cable was out
        second_pen.clear_faults()
        second = resume_session(second_pen, passlog, first.session_id, technician="bo")
        second.play()
        second.close()
    finally:
        second_pen.close()
    report = replay_session(passlog, first.session_id)
    assert report.match, (report.difference, report.notes)
    assert report.parts == 2


def test_into_sim_of_a_session_whose_link_was_lost_matches(cable_pulled):
    from smpdevice.replay.into_sim import replay_into_sim

    report = replay_into_sim(cable_pulled.passlog, cable_pulled.session_id)
    assert report.match, report.difference


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(_JSON, st.fixed_dictionaries(
    {"kind": st.sampled_from(["link_lost", "stop", "estop", "x"])},
    optional={"cause": _JSON, "state": _JSON, "reason": _JSON})))
def test_any_input_entry_is_parsed_or_skipped_and_only_a_port_loss_is_fed(value):
    """Whatever a recording's `/input` holds: an Input or None, never an exception; a lost
    link is fed only when its cause is exactly `port`."""
    item = parse_input(json.dumps(value).encode(), 2, 0.5)
    if item is not None:
        assert item.kind in ("stop", "pen_stop", "estop", "link_lost")
        assert item.kind != "link_lost" or value.get("cause") == "port"
    assert parse_input(b"\xff{not json", 0, 0.0) is None
