"""Session 20: a lost link and `pen.reconnect()` between passes is replayed.

docs/simulator.md said "A lost link and `pen.reconnect()` between passes is not replayed yet
(the reconnect's states are a difference)": the recording had no trace of the reconnect but
its state changes, and nothing of the new connection (the recording's tap stayed on the dead
port), so `smp replay` said `first difference: state #4 ...: expected disconnected ->
connecting; got no more state changes`. Now the reconnect is a recorded input (`reconnect` on
`/input`), the new connection's handshake is kept (`/reconnect/host`, `/reconnect/pen`) and the
session's bytes on it go on `/host` and `/pen`; the replay takes the same reconnect at the same
point (the recorded pen plugged in again, the replayed controller's `reconnect()`), and
`--into-sim` opens a new port on the simulator there and plays the handshake on it.

Virtual time, the real simulator, real controller, real pass log and recording; the cable is
pulled and the pen reconnected by another thread right after pass 1's end is recorded, as
tests/smpdevice/sessions/test_rev19_interrupted_between_passes.py does. Each replay runs
several times: a match that depended on the threads' timing would not hold every time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_protocol import StreamDecoder
from smpdevice.cli import main
from smpdevice.control import State
from smpdevice.control.connection import ConnectionMixin
from smpdevice.errors import SmpError
from smpdevice.records.frames import read_recording
from tests.smpdevice.replay.conftest import Acted, record_acted, replay_runs

pytestmark = pytest.mark.virtual_time

RUNS = 5  # each replay, from a fresh controller: the same verdict every time


def _pull_and_replug(sim, pen) -> None:
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
    sim.reconnect()
    pen.reconnect()  # the monitor's `r`, the service's pen.reconnect


def _retry_then_replug(sim, pen) -> None:
    """The service's way: it tries while the cable is still out (the port does not open),
    then again once it is back."""
    sim.disconnect()
    pen.wait_for_state(State.DISCONNECTED, timeout_s=5)
    with pytest.raises(SmpError):
        pen.reconnect()
    sim.reconnect()
    pen.reconnect()


Recorded = Acted  # (the name test_rev20_link_lost_reconnected.py imports)


def _record(tmp_path: Path, act: Callable) -> Acted:
    """A 3-pass session; `act(sim, pen)` in another thread once pass 1's end is recorded."""

    def reconnected(sim, pen, session, log) -> None:
        assert pen.state is State.IDLE  # reconnected
        assert session.judged_pen_state() == "disconnected"  # the play ended on the loss

    acted = record_acted(tmp_path, act, settle_s=0.1, finish=reconnected)
    # the new connection's reports recorded before the session ends (settle_s)
    assert acted.outcome == "link_lost", acted
    assert acted.passes == ("completed",), acted.passes
    return acted


@pytest.fixture(params=[_pull_and_replug, _retry_then_replug],
                ids=["reconnected", "retried-then-reconnected"])
def reconnected(request, tmp_path) -> Recorded:
    return _record(tmp_path, request.param)


def _replays(rec: Acted, into_sim: bool = False, **kwargs) -> list:
    return replay_runs(rec, RUNS, into_sim, **kwargs)


def test_the_reconnect_and_its_handshake_are_recorded(reconnected):
    rec = read_recording(reconnected.recording)
    inputs = [json.loads(e.data) for e in rec.channel("/input")]
    kinds = [i["kind"] for i in inputs]
    assert "link_lost" in kinds and "reconnect" in kinds, kinds
    assert kinds.index("link_lost") < kinds.index("reconnect")
    assert all(i["state"] == "disconnected" for i in inputs if i["kind"] == "reconnect")
    sent = StreamDecoder().feed(b"".join(e.data for e in rec.channel("/reconnect/host")))
    names = [type(f.message).__name__ for f in sent]
    # the handshake, and the settle: the pen was left armed after pass 1
    assert names == ["IdentifyRequest", "SetTelemetryRate", "Disarm"], names
    assert rec.channel("/reconnect/pen")
    # the new connection's bytes after its handshake are the session's again
    connected_s = rec.channel("/reconnect/host")[-1].t_s
    assert [e for e in rec.channel("/pen") if e.t_s > connected_s], "nothing recorded after"


def test_a_session_reconnected_between_passes_replays_as_a_match(reconnected):
    for report in _replays(reconnected):
        assert report.match, (report.difference, report.notes)
        # at the first try: the reconnect is applied at its point, not left to timing
        assert not [n for n in report.notes if "matched on replay" in n], report.notes
    result = CliRunner().invoke(main, ["replay", reconnected.session_id, "--db",
                                       str(reconnected.path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("match: session"), result.output


def test_into_sim_plays_the_reconnect_and_matches(reconnected):
    for report in _replays(reconnected, into_sim=True):
        assert report.match, (report.difference, report.notes)
    result = CliRunner().invoke(main, ["replay", reconnected.session_id, "--db",
                                       str(reconnected.path), "--into-sim"])
    assert result.exit_code == 0, result.output


def test_a_changed_reconnect_is_a_difference(reconnected, monkeypatch):
    """A version that asks another telemetry rate when it reconnects: the new connection's
    handshake is compared like any decision."""
    original = ConnectionMixin.reconnect

    def slower(self) -> None:
        self.telemetry_hz = 50
        original(self)

    monkeypatch.setattr(ConnectionMixin, "reconnect", slower)
    for report in _replays(reconnected):
        assert not report.match
        assert report.difference.what == "command", report.difference
        assert "SetTelemetryRate {'rate_hz': 100}" in report.difference.expected
        assert "SetTelemetryRate {'rate_hz': 50}" in report.difference.got


def test_a_controller_that_does_not_reconnect_is_a_difference(reconnected, monkeypatch):
    def refused(self) -> None:
        raise SmpError("this version never reconnects")

    monkeypatch.setattr(ConnectionMixin, "reconnect", refused)
    for report in _replays(reconnected):
        assert not report.match
        assert report.difference.what == "state", report.difference
        assert "disconnected -> connecting" in report.difference.expected, report.difference


def test_without_the_recorded_reconnect_it_still_differs(reconnected, monkeypatch):
    """Older recordings (no `reconnect` input) replay as before: no reconnect is guessed."""
    from smpdevice.replay import script
    from smpdevice.replay.inputs import parse_input

    monkeypatch.setattr(script, "parse_input", lambda data, after, t_s: None
                        if b'"reconnect"' in data else parse_input(data, after, t_s))
    (report,) = _replays(reconnected)[:1]
    assert not report.match
    assert "disconnected -> connecting" in report.difference.expected, report.difference


def test_into_sim_compares_the_reconnect_s_handshake(tmp_path):
    """A simulator that latched a jam the pen never had (given with --faults, late in pass 1,
    pen time): the first reply that differs is the reconnect's DISARM, refused where the pen
    ACKed it: the new connection's handshake is played and compared."""
    rec = _record(tmp_path, _pull_and_replug)
    recording = read_recording(rec.recording)
    reports = [f.message for f in StreamDecoder().feed(
        b"".join(e.data for e in recording.channel("/reconnect/pen")))
        if hasattr(f.message, "uptime_ms")]
    at_s = (reports[0].uptime_ms - 100) / 1000.0  # 0.1 s before the reconnect, pen time
    for report in _replays(rec, into_sim=True, faults=f"jam@{at_s:.3f}"):
        assert not report.match
        assert report.difference.what == "reconnect reply", report.difference
        assert "Ack {'acked_type': 5} to Disarm" in report.difference.expected, report.difference
        assert "FAULT_LATCHED" in report.difference.got, report.difference
