"""A recording cut short, because the host died (kill -9, a power cut) or its recording stopped
(a full disk), is compared with the run up to its end only (review7a R04): past it the
recorded pen says nothing more, and what the replayed controller would do about that silence
(fault on stopped telemetry) is no difference. A change before the end still is.

The crash is the disk as a crash leaves it: the pass log (an SQLite backup) and the recording
(its bytes, flushed, with no MCAP footer) copied at one instant of the virtual clock, frozen
meanwhile; the copy is then replayed and resumed as a data directory found after the crash.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog, PassOutcome
from smpdevice.records import frames
from smpdevice.records.frames import read_recording, recording_path
from smpdevice.replay.into_sim import replay_into_sim
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.resume import resume_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.replay.conftest import CLEAR, short_profile
from tests.smpdevice.replay.test_into_sim_parts import built_once, copy_built, virtual_pen
from tests.smpdevice.virtual_time import after, wall_until

pytestmark = pytest.mark.virtual_time

PASS_S = 1.5  # two passes; the host dies about 0.9 s into the second (a checkpoint made)
CRASH_INTO_PASS_S = 1.0
FULL_AT_S = 0.9  # the disk fills in the second of three 0.4 s passes


def _snapshot(passlog: PassLog, session: TreatmentSession, into: Path) -> None:
    """The data directory as a crash leaves it: what the recorder flushed, what SQLite
    committed (called with the virtual clock frozen: nothing moves meanwhile)."""
    sid, writer = session.session_id, session.recording.writer
    flushes = writer.flushes  # two more: whatever was queued when the clock froze is written
    wall_until(lambda: writer.flushes >= flushes + 2, "the recorder's flush")
    into.mkdir()
    (into / "recordings").mkdir()
    source = recording_path(passlog.path, sid)
    (into / "recordings" / source.name).write_bytes(source.read_bytes())
    with sqlite3.connect(passlog.path) as src, sqlite3.connect(into / "passlog.sqlite") as dst:
        src.backup(dst)
    anchors = Path(passlog.anchors_path)
    if anchors.is_file():
        shutil.copy(anchors, into / anchors.name)


def crashed_mid_pass(passlog: PassLog, into: Path) -> str:
    """A session whose host died mid-pass (its data directory copied to `into`); its id."""
    with virtual_pen() as (sim, pen):
        session = TreatmentSession.open(pen, passlog, short_profile(PASS_S, passes=2),
                                        technician="ana", screening=parse_screening(CLEAR))
        sid, taken = session.session_id, threading.Event()

        def crash_when_in_second_pass() -> None:
            def crash() -> None:
                _snapshot(passlog, session, into)
                taken.set()

            if len(passlog.passes(sid)) == 2 and not taken.is_set():
                after(sim.clock, 0.0, crash)  # in the clock's own thread: it stands still
            elif not taken.is_set():
                after(sim.clock, 0.01, crash_when_in_second_pass)

        after(sim.clock, PASS_S + CRASH_INTO_PASS_S, crash_when_in_second_pass)
        session.play()
        session.close()
    assert taken.is_set()
    return sid


def _crash(data: Path) -> str:
    """crashed_mid_pass's session, its copy after the crash in `data`."""
    live = data.parent / "live"
    live.mkdir()
    with PassLog.open(live / "passlog.sqlite") as passlog:
        return crashed_mid_pass(passlog, data)


@pytest.fixture
def crashed(tmp_path_factory, tmp_path, monkeypatch) -> tuple[Path, str]:
    """The data directory found after the crash: made once per run (built_once), this test's
    own copy of it (a test may recover or resume it)."""
    built, sid = built_once(tmp_path_factory, "crashed", _crash)
    into = copy_built(built, tmp_path / "after-the-crash", monkeypatch)
    rec = read_recording(recording_path(into / "passlog.sqlite", sid))
    assert not rec.finished and rec.truncated is None  # no end written: the host died
    return into, sid


def test_a_session_whose_host_died_mid_pass_replays_as_a_match(crashed):
    into, sid = crashed
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        assert [p.outcome for p in log.passes(sid)] == [PassOutcome.completed, None]
        report = replay_session(log, sid)
    assert report.match, report.difference
    assert any("ends before its run did" in note for note in report.notes), report.notes
    assert report.matched >= report.decisions > 4  # the first pass's and the second's start


def test_the_command_line_says_match_and_exits_0(crashed):
    into, sid = crashed
    for extra in ([], ["--into-sim"]):
        result = CliRunner().invoke(main, ["replay", sid, "--db", str(into / "passlog.sqlite"),
                                           *extra])
        assert result.exit_code == 0, result.output
        assert f"match: session {sid}" in result.output and "difference" not in result.output


def test_recovered_as_controller_crashed_it_still_matches(crashed):
    into, sid = crashed
    with PassLog.open(into / "passlog.sqlite") as log:  # a writer: recovery closes the pass
        assert [p.outcome for p in log.passes(sid)] == [PassOutcome.completed,
                                                        PassOutcome.controller_crashed]
        report = replay_session(log, sid)
    assert report.match, report.difference


def test_a_change_before_the_crash_is_still_a_difference(crashed, monkeypatch):
    """The controller converts depth 10 um deeper: its first SET_SETPOINTS differs."""
    from smpdevice.control.calibration import Calibration

    into, sid = crashed
    original = Calibration.to_actuator_mm
    monkeypatch.setattr(Calibration, "to_actuator_mm",
                        lambda self, depth_mm: original(self, depth_mm) + 0.01)
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        report = replay_session(log, sid)
    assert not report.match
    assert report.difference.what == "command" and "SetSetpoints" in report.difference.got


def test_a_pass_that_ends_later_before_the_crash_is_still_a_difference(crashed, monkeypatch):
    """The session now stops its passes late (supervision polls every 0.7 s): the first
    pass, ended well before the recording's end, stops later than recorded."""
    from smpdevice.sessions import session as session_module

    into, sid = crashed
    monkeypatch.setattr(session_module, "POLL_S", 0.7)
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        report = replay_session(log, sid)
    assert not report.match
    assert "NeedleStop" in report.difference.expected and "later" in report.difference.got


def test_figures_of_a_pass_ended_before_the_crash_are_still_compared(crashed, monkeypatch):
    """A pass the run ended before its recording's end is compared in full: a replay that
    counts its strokes otherwise differs there."""
    from smpdevice.records.model import PassStats

    into, sid = crashed
    original = PassStats.figures
    monkeypatch.setattr(PassStats, "figures",
                        lambda self: {**original(self), "strokes": original(self)["strokes"]
                                      + 1000})
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        report = replay_session(log, sid)
    assert not report.match
    assert report.difference.what == "pass" and report.difference.index == 0
    assert "strokes" in report.difference.expected


def test_resumed_after_the_crash_it_matches_part_by_part_and_in_the_simulator(crashed):
    into, sid = crashed
    with PassLog.open(into / "passlog.sqlite") as log, virtual_pen() as (_sim, pen):
        second = resume_session(pen, log, sid, technician="bo")
        second.play()
        second.close()
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        assert len(log.session(sid).summary["recording"]) == 2  # both parts, linked
        report = replay_session(log, sid)
        assert report.match, report.difference
        assert report.parts == 2
        into_sim = replay_into_sim(log, sid)
    assert into_sim.match, into_sim.difference
    assert [r.match for r in into_sim.part_results] == [True, True]


def test_a_recording_stopped_by_a_full_disk_is_compared_up_to_its_end(pen, passlog,
                                                                      monkeypatch):
    """The disk fills in the second of three passes: the recording stops, the treatment goes
    on and closes. What the run did past the recording's end is not compared."""
    original = frames.FrameWriter._write

    def disk_fills(self, channel, t_s, data):
        if channel != "/meta" and t_s - self.start_s > FULL_AT_S:
            raise OSError(28, "No space left on device")
        return original(self, channel, t_s, data)

    monkeypatch.setattr(frames.FrameWriter, "_write", disk_fills)
    session = TreatmentSession.open(pen, passlog, short_profile(0.4, passes=3),
                                    technician="ana", screening=parse_screening(CLEAR))
    session.play()
    summary, _ = session.close()
    monkeypatch.setattr(frames.FrameWriter, "_write", original)
    assert summary["recording"]["truncated"].startswith("write error")
    assert [p.outcome for p in passlog.passes(session.session_id)] == [
        PassOutcome.completed] * 3
    rec = read_recording(recording_path(passlog.path, session.session_id))
    assert 0 < max(e.t_s for e in rec.entries) < FULL_AT_S + 0.1  # the run went on past it
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference
    assert any("write error" in note for note in report.notes), report.notes
    into_sim = replay_into_sim(passlog, session.session_id)
    assert into_sim.match, into_sim.difference


def test_a_pass_cut_short_before_the_crash_is_still_a_difference(crashed, monkeypatch):
    """The session now ends its second pass after 0.1 s: every recorded decision was made,
    yet its needle stops while the recording still shows it running for most of a second
    (more than the 0.5 s a decision may come early): a change before the end."""
    from smpdevice.sessions.session import TreatmentSession as Session

    into, sid = crashed
    supervise = Session._supervise

    def shorter_second_pass(self, pass_id, planned, index, *args):
        if index == 1:
            planned = planned.model_copy(update={"duration_s": 0.1})
        return supervise(self, pass_id, planned, index, *args)

    monkeypatch.setattr(Session, "_supervise", shorter_second_pass)
    with PassLog.open(into / "passlog.sqlite", readonly=True) as log:
        report = replay_session(log, sid)
    assert not report.match
    diff = report.difference  # the stop itself is acked (a stop after the last decision may
    assert diff.what == "state", diff  # be the run's way out); the needle stopping is not
    assert (diff.expected, diff.got) == ("no more state changes", "running -> armed"), diff
    assert diff.t_s < 2.0  # well before the recording's end, 0.9 s into the pass
