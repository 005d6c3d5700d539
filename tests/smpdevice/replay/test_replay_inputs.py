"""Operator stops are inputs, not differences: a session stopped by Ctrl-C or by an E-stop
request records that input on the recording's `/input` channel, and `smp replay` applies it
at the same point of the conversation. A changed controller still shows as a difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smpdevice.cli import main
from smpdevice.passlog import PassLog
from smpdevice.records.frames import FrameWriter, read_recording, recording_path
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.cli.test_cli_run import (  # noqa: F401 - a fixture
    SmpRun,
    calibrate_default_pen,
    data_dir,
    short_profile,
)
from tests.smpdevice.replay.conftest import CLEAR
from tests.smpdevice.replay.conftest import short_profile as short_plan
from tests.smpdevice.replay.test_into_sim_parts import built_once, copy_built

pytestmark = pytest.mark.virtual_time  # the in-process pens (`sim`, `pen`) run on it


def inputs_of(path) -> list[dict]:
    """The inputs recorded, without the session's checks between passes (`between`: points)."""
    entries = [json.loads(e.data) for e in read_recording(path).channel("/input")]
    return [entry for entry in entries if entry.get("kind") != "between"]


def smp(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert "Traceback" not in result.output, result.output
    return result


# ---------------------------------------------------------------- a real Ctrl-C

def _ctrl_c_run(data: Path) -> str:
    """`smp run` in a subprocess on pensim://, Ctrl-C (SIGINT) mid-pass: exit 130."""
    data.mkdir()
    calibrate_default_pen(data)
    run = SmpRun(data, short_profile(data.parent, seconds="30"))
    run.wait_for(lambda e: e.get("event") == "checkpoint" and e.get("strokes", 0) > 0)
    code, stderr = run.interrupt_and_wait()
    assert code == 130, stderr[-2000:]
    with PassLog(data / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        return session.session_id


@pytest.fixture
def ctrl_c_session(data_dir, tmp_path_factory, monkeypatch):  # noqa: F811
    """_ctrl_c_run's data directory (its process run once per test run: built_once), this
    test's own copy of it in `data_dir`; the session's id."""
    built, _sid = built_once(tmp_path_factory, "ctrl-c", _ctrl_c_run)
    copy_built(built, data_dir, monkeypatch)
    with PassLog(data_dir / "passlog.sqlite", readonly=True) as log:
        (session,) = log.sessions()
        assert session.summary["outcome"] == "interrupted"
        return session.session_id


# A real-time `smp run` child on a wall-clock pen, Ctrl-C mid-pass: the realtime pass.
@pytest.mark.realtime
def test_a_ctrl_c_session_replays_as_a_match(ctrl_c_session, data_dir):  # noqa: F811
    sid = ctrl_c_session
    recorded = inputs_of(recording_path(data_dir / "passlog.sqlite", sid))
    assert [(i["kind"], i["state"]) for i in recorded] == [("stop", "running")]
    replay = smp("replay", sid)
    assert replay.exit_code == 0, replay.output
    assert replay.output.startswith(f"match: session {sid}")


def test_a_session_that_ignores_the_stop_is_a_difference(ctrl_c_session, monkeypatch):
    """The input is applied, not assumed: a session that no longer honours the technician's
    stop runs its 30 s pass on, and the recorded early NEEDLE_STOP is named."""
    original = TreatmentSession.play
    monkeypatch.setattr(TreatmentSession, "play",
                        lambda self, on_progress=None, should_stop=None:
                        original(self, on_progress, None))
    replay = smp("replay", ctrl_c_session)
    assert replay.exit_code == 1, replay.output
    assert "first difference: command" in replay.output
    assert "NeedleStop" in replay.output and "later" in replay.output, replay.output


# ---------------------------------------------------------------- in process, virtual time


def play_with_stop(pen, passlog, should_stop, passes: int = 3):
    session = TreatmentSession.open(pen, passlog, short_plan(passes=passes), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play(should_stop=should_stop)
    session.close()
    return session


def test_a_stop_between_passes_replays_at_its_place(pen, passlog):
    """Asked between passes, the stop is placed by the decisions before it (no timing: the
    session asks once there), so a replayed session that gets there sooner still stops."""
    session = TreatmentSession.open(pen, passlog, short_plan(passes=3), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play(should_stop=lambda: len(session.results) >= 1)  # Ctrl-C during pass 1
    session.close()
    assert [r.outcome.value for r in session.results] == ["completed"]
    assert session.outcome.value == "interrupted"
    recorded = inputs_of(recording_path(passlog.path, session.session_id))
    assert [(i["kind"], i["state"]) for i in recorded] == [("stop", "armed")]
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_a_stop_is_recorded_once(pen, passlog):
    session = play_with_stop(pen, passlog, lambda: True)
    assert session.results == []
    recorded = inputs_of(recording_path(passlog.path, session.session_id))
    assert [i["kind"] for i in recorded] == ["stop"]  # asked many times, recorded once
    assert replay_session(passlog, session.session_id).match


def test_an_e_stop_request_is_recorded_and_replayed(sim, pen, passlog):
    from tests.smpdevice.virtual_time import after

    after(sim.clock, 0.5, pen.estop, in_thread=True)
    session = play_with_stop(pen, passlog, None)
    assert session.results[-1].outcome.value == "estop"
    recorded = inputs_of(recording_path(passlog.path, session.session_id))
    assert [(i["kind"], i["state"]) for i in recorded] == [("estop", "running")]
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_an_e_stop_the_replay_does_not_press_is_a_difference(sim, pen, passlog, monkeypatch):
    from smpdevice.replay import inputs as inputs_module
    from tests.smpdevice.virtual_time import after

    after(sim.clock, 0.5, pen.estop, in_thread=True)
    session = play_with_stop(pen, passlog, None)
    # A replay that dropped the recorded inputs: the E-stop's frame is then a difference.
    monkeypatch.setattr(inputs_module, "parse_input", lambda *a: None)
    monkeypatch.setattr("smpdevice.replay.script.parse_input", lambda *a: None)
    report = replay_session(passlog, session.session_id)
    assert not report.match
    assert "EStop" in report.difference.expected, report.difference


def test_a_technicians_clear_while_the_session_is_open_is_an_input(sim, pen, passlog):
    """A pass jams; the technician clears the fault before closing the session (the Python
    API allows it). The clear is the technician's act, never the controller's: it is recorded
    on `/input` and replayed at its point. It used to be a difference for ever: "expected
    ClearFaults; got nothing more from the controller" (review10a R02)."""
    from tests.smpdevice.virtual_time import after

    session = TreatmentSession.open(pen, passlog, short_plan(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    after(sim.clock, 0.3, lambda: sim.inject("jam"), in_thread=True)
    session.play()
    assert session.results[-1].outcome.value == "fault"
    sim.clear("jam")  # the cause removed, then the technician's clear
    pen.clear_faults()
    session.close()
    recorded = inputs_of(recording_path(passlog.path, session.session_id))
    assert [i["kind"] for i in recorded] == ["clear"]
    report = replay_session(passlog, session.session_id)
    assert report.match, (report.difference, report.notes)


def test_a_recording_without_the_inputs_channel_replays_as_before(sim, pen, passlog):
    """A recording made before inputs were kept (no `inputs` in its metadata, no `/input`
    entries): an E-stop is still pressed where its next decision is an ESTOP."""
    from tests.smpdevice.virtual_time import after

    after(sim.clock, 0.5, pen.estop, in_thread=True)
    session = TreatmentSession.open(pen, passlog, short_plan(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    session.recording.seal()  # left open (interrupted): its file can be rewritten
    path = recording_path(passlog.path, session.session_id)
    original = read_recording(path)
    path.unlink()
    meta = {k: v for k, v in original.meta.items() if k not in ("inputs", "format")}
    writer = FrameWriter(path, meta, start_s=0.0)
    for entry in original.entries:
        if entry.channel != "/input":
            writer.add(entry.channel, entry.t_s, entry.data)
    writer.seal()
    old = read_recording(path)
    assert "inputs" not in old.meta and old.channel("/input") == []
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_replay_help_documents_parts_and_inputs():
    text = smp("replay", "--help").output
    assert "A resumed session" in text and "part" in text
    assert "/input" in text and "Ctrl-C" in text and "E-stop" in text


def test_a_real_sigint_mid_pass_is_recorded_and_replayed(sim, pen, passlog):
    """Ctrl-C outside `smp run` (a script's KeyboardInterrupt in a pass): the pass records
    itself as stopped, the input is kept, and the replay stops the pass at the same point."""
    import os
    import signal

    from tests.smpdevice.virtual_time import after

    session = TreatmentSession.open(pen, passlog, short_plan(1.0, passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    after(sim.clock, 0.6, lambda: os.kill(os.getpid(), signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        session.play()
    session.close()
    assert [r.outcome.value for r in session.results] == ["stopped"]
    recorded = inputs_of(recording_path(passlog.path, session.session_id))
    assert [(i["kind"], i["source"]) for i in recorded] == [("stop", "Ctrl-C")]
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_an_e_stop_is_one_input_however_often_it_is_resent():
    """Retransmissions (same seq) are one request; a later E-stop reusing a sequence number
    after the window is another."""
    from firmware_protocol import encode
    from firmware_protocol.messages import EStop, LeaseRenew
    from smpdevice.replay.inputs import RETRANSMIT_WINDOW, InputTap

    got: list[dict] = []
    tap = InputTap(got.append, lambda: "running")
    for _ in range(3):
        tap.on_host_bytes(encode(EStop(), 7))
    assert [(i["kind"], i["seq"]) for i in got] == [("estop", 7)]
    for seq in range(RETRANSMIT_WINDOW):
        tap.on_host_bytes(encode(LeaseRenew(200), (seq % 200) + 10))
    tap.on_host_bytes(encode(EStop(), 7))
    assert len(got) == 2
