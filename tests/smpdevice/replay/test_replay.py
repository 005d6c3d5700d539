"""`smp replay`: a recorded session replayed into a fresh controller, or into the simulator."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import simulators
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.records.frames import FrameWriter, RecordingError, recording_path
from smpdevice.replay.into_sim import replay_into_sim
from smpdevice.replay.runner import load, replay_session
from tests.smpdevice.replay.conftest import CLEAR, record_session

pytestmark = pytest.mark.virtual_time


@pytest.fixture
def recorded(pen, passlog):
    return record_session(pen, passlog)


def test_a_replay_of_a_recorded_session_matches(recorded):
    report = replay_session(recorded.passlog, recorded.session_id)
    assert report.match, report.difference
    assert report.decisions >= 3 * 4  # setpoints, arm, start, stop per pass (at least)
    assert report.matched >= report.decisions  # every decision (and the handshake) matched


def test_a_changed_controller_behaviour_shows_as_the_first_difference(recorded, monkeypatch):
    # The controller now converts depth 10 um deeper: its first SET_SETPOINTS differs.
    original = Calibration.to_actuator_mm
    monkeypatch.setattr(Calibration, "to_actuator_mm",
                        lambda self, depth_mm: original(self, depth_mm) + 0.01)
    report = replay_session(recorded.passlog, recorded.session_id)
    assert not report.match
    diff = report.difference
    assert diff.what == "command" and diff.index == 0
    assert "SetSetpoints" in diff.expected and "SetSetpoints" in diff.got
    assert diff.expected != diff.got


def test_a_changed_pass_length_shows_in_the_commands_or_figures(recorded, monkeypatch):
    from smpdevice.control import news
    from smpdevice.sessions import session as session_module

    # the session stops each pass later (its supervision polls a longer interval), and so
    # does the controller's own stop at the planned end
    monkeypatch.setattr(session_module, "POLL_S", 0.5)
    monkeypatch.setattr(news, "PLANNED_END_GRACE_S", 0.5)
    report = replay_session(recorded.passlog, recorded.session_id)
    assert not report.match
    assert report.difference.what == "command"
    assert "NeedleStop" in report.difference.expected and "later" in report.difference.got


def test_the_recorded_commands_replayed_into_the_simulator_match(recorded):
    report = replay_into_sim(recorded.passlog, recorded.session_id)
    assert report.match, report.difference
    assert report.matched == report.decisions + 2  # the session's frames and the handshake


def test_another_pen_in_the_simulator_is_a_difference(recorded, monkeypatch):
    class OtherPen(simulators.PenSimulator):
        def __init__(self, seed=0, **kwargs):
            super().__init__(seed=seed + 1, **kwargs)

    monkeypatch.setattr(simulators, "PenSimulator", OtherPen)
    report = replay_into_sim(recorded.passlog, recorded.session_id)
    assert not report.match
    assert report.difference.what == "handshake reply" and report.difference.index == 0
    assert "Identify" in report.difference.expected


# ---------------------------------------------------------------- the command line

def smp(*args):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output
    return result


def test_cli_prints_match_and_exits_0(recorded):
    result = smp("replay", recorded.session_id, "--db", str(recorded.passlog.path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("match: session " + recorded.session_id)
    result = smp("replay", recorded.session_id[:8], "--into-sim", "--db",
                 str(recorded.passlog.path))
    assert result.exit_code == 0 and "match" in result.output


def test_cli_names_the_first_difference_and_exits_1(recorded, monkeypatch):
    original = Calibration.to_actuator_mm
    monkeypatch.setattr(Calibration, "to_actuator_mm",
                        lambda self, depth_mm: original(self, depth_mm) + 0.01)
    result = smp("replay", recorded.session_id, "--db", str(recorded.passlog.path))
    assert result.exit_code == 1
    assert "first difference: command #0 at t=" in result.output
    assert "expected SetSetpoints" in result.output


def test_cli_unknown_session_is_a_clear_error(recorded):
    result = smp("replay", "Snosuchsession", "--db", str(recorded.passlog.path))
    assert result.exit_code == 2
    assert "no session 'Snosuchsession'" in result.output


def test_an_edited_recording_fails_its_hash(recorded):
    data = bytearray(recorded.path.read_bytes())
    data[len(data) // 2] ^= 0x01
    recorded.path.write_bytes(bytes(data))
    result = smp("replay", recorded.session_id, "--db", str(recorded.passlog.path))
    assert result.exit_code == 2
    assert "does not match the hash" in result.output and "edited or replaced" in result.output


def test_a_truncated_recording_fails_its_hash(recorded):
    data = recorded.path.read_bytes()
    recorded.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match="does not match the hash"):
        load(recorded.passlog, recorded.session_id)


def test_a_missing_recording_is_a_clear_error(recorded):
    recorded.path.unlink()
    result = smp("replay", recorded.session_id, "--db", str(recorded.passlog.path))
    assert result.exit_code == 2
    assert "recording of session" in result.output and "is missing" in result.output


def _open_session(passlog: PassLog) -> str:
    return passlog.open_session(
        technician="ana", client_ref="c1", session_kind="base_density", pen_serial="P1",
        firmware_version="1", calibration_id="cal", profile_hash="h", screening=CLEAR,
        simulated=True)


def test_a_recording_from_another_installation_is_refused(passlog):
    sid = _open_session(passlog)  # an interrupted session: no hash to check, so the meta is
    path = recording_path(passlog.path, sid)
    FrameWriter(path, {"session_id": sid, "key_fingerprint": "SHA256:someone-else"},
                start_s=0.0).seal()
    with pytest.raises(RecordingError, match="another installation"):
        load(passlog, sid)


def test_a_recording_of_another_session_is_refused(passlog):
    sid = _open_session(passlog)
    FrameWriter(recording_path(passlog.path, sid), {"session_id": "Sother"}, start_s=0.0).seal()
    with pytest.raises(RecordingError, match="records session 'Sother'"):
        load(passlog, sid)


def test_a_garbage_recording_of_an_interrupted_session_is_a_clear_error(passlog):
    sid = _open_session(passlog)
    path = recording_path(passlog.path, sid)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    path.write_bytes(b"\x89MCAP0\r\n" + b"\xff" * 100)
    result = smp("replay", sid, "--db", str(passlog.path))
    assert result.exit_code == 2
    assert "not a readable smpdevice frame recording" in result.output


def test_a_session_closed_without_a_recording_says_so(passlog):
    sid = _open_session(passlog)
    from datetime import UTC, datetime

    passlog.close_session(sid, closed_at=datetime.now(UTC), summary={"passes": 0})
    with pytest.raises(RecordingError, match="no frame recording linked"):
        load(passlog, sid)


# ---------------------------------------------------------------- incidents

def test_a_session_that_ended_on_a_jam_replays_with_its_fault(sim, pen, passlog):
    from tests.smpdevice.virtual_time import after

    after(sim.clock, 0.4, lambda: sim.inject("jam"))  # during the second pass
    rec = record_session(pen, passlog)
    outcomes = [p.outcome for p in passlog.passes(rec.session_id)]
    assert outcomes[-1] == "fault"
    report = replay_session(passlog, rec.session_id)
    assert report.match, report.difference  # the controller decides as it did: stops, faults
    # the simulator, told the same commands, never jams: the first reply that differs is named
    into = replay_into_sim(passlog, rec.session_id)
    assert not into.match
    assert into.difference.what == "pen event" and into.difference.index == 0
    assert "JAM" in into.difference.expected
    assert "no such event from the simulator" in into.difference.got


def test_an_e_stop_mid_pass_replays(sim, pen, passlog):
    from tests.smpdevice.virtual_time import after

    after(sim.clock, 0.5, pen.estop, in_thread=True)
    rec = record_session(pen, passlog)
    assert passlog.passes(rec.session_id)[-1].outcome == "estop"
    report = replay_session(passlog, rec.session_id)
    assert report.match, report.difference


def test_what_the_pen_did_before_a_slow_close_is_replayed_before_it(sim, pen, passlog):
    """A loaded host closed late, and the pen's lease lapsed meanwhile (its renewals lost):
    the replay lets the recorded pen catch up before it closes, as the live host did."""
    from firmware_protocol import MsgType
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    from tests.smpdevice.replay.conftest import short_profile

    session = TreatmentSession.open(pen, passlog, short_profile(passes=1), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    assert pen.state.value == "armed"  # after its last pass; then renewals are lost
    sim.link.drop_inbound(MsgType.LEASE_RENEW)
    sim.time.wait_until(lambda: pen.state.value != "armed", timeout_s=5.0)
    sim.link.clear_inbound()
    session.close()
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_an_interrupted_sessions_cut_recording_replays_unverified_up_to_the_cut(pen, passlog):
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    from tests.smpdevice.replay.conftest import short_profile

    session = TreatmentSession.open(pen, passlog, short_profile(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    session.recording.seal()  # the host dies here: no close record, no hash anywhere
    path = recording_path(passlog.path, session.session_id)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3 + 5])  # and the file ends mid-record
    report = replay_session(passlog, session.session_id)
    notes = " ".join(report.notes)
    assert "still open" in notes and "replayed unverified" in notes
    assert "ends mid-record" in notes
    assert report.matched > 0  # what is there is replayed


def test_a_real_pens_recording_goes_into_a_stand_in_simulator(pen, passlog):
    """A real pen names no simulator: seed 0 stands in, its IDENTIFY is not compared."""
    from smpdevice.records.frames import read_recording
    from smpdevice.sessions.screening import parse_screening
    from smpdevice.sessions.session import TreatmentSession
    from tests.smpdevice.replay.conftest import short_profile

    session = TreatmentSession.open(pen, passlog, short_profile(passes=1), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    session.recording.seal()  # left open (interrupted): its file can be rewritten for the test
    path = recording_path(passlog.path, session.session_id)
    original = read_recording(path)
    path.unlink()
    writer = FrameWriter(path, {**original.meta, "sim_seed": None, "simulated": False},
                         start_s=0.0)
    for entry in original.entries:
        writer.add(entry.channel, entry.t_s, entry.data)
    writer.seal()
    report = replay_into_sim(passlog, session.session_id)
    assert any("seed 0" in note and "IDENTIFY" in note for note in report.notes)
    assert report.match, report.difference
