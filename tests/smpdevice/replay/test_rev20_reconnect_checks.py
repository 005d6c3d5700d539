"""Review 20 (R2): the replay of a reconnect compares the whole handshake, and a recording
cut within one matches up to its cut.

Found by the reviewer on the recording of tests/smpdevice/replay/test_rev20_reconnect_replay.py
(3 passes; the cable pulled and the pen reconnected right after pass 1's end is logged; the pen
was left ARMED, so the reconnect's handshake is IDENTIFY, SET_TELEMETRY_RATE, DISARM):
- a controller whose reconnect leaves an armed pen armed (no DISARM) replayed as `match`:
  the replay went back to the session when `reconnect()` returned without checking that every
  recorded command of its handshake was made (likewise at the session's end);
- the recording tampered (the new connection's reports ARMED -> IDLE; the DISARM taken out of
  `/reconnect/host`) replayed as `match`: a command past the handshake's end, made while the
  controller was still connecting, was taken as the session's (a DISARM past its end: no
  difference);
- a recording cut within the handshake (the host died as it reconnected) read as "the port did
  not open": a false difference.
Each replay runs 5 times from a fresh controller: the verdict must hold every time."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from firmware_protocol import StreamDecoder, encode
from firmware_protocol.codes import FirmwareState
from firmware_protocol.messages import Disarm, Telemetry
from smpdevice.cli import main
from smpdevice.control import State
from smpdevice.control.connection import ConnectionMixin
from smpdevice.records.frames import FrameWriter, read_recording
from tests.smpdevice.replay.conftest import Acted, record_acted
from tests.smpdevice.replay.test_replay_crashed import _snapshot
from tests.smpdevice.replay.test_rev20_reconnect_replay import (
    RUNS,
    _pull_and_replug,
    _replays,
)
from tests.smpdevice.virtual_time import after

pytestmark = pytest.mark.virtual_time


def _record(tmp_path: Path, act) -> Acted:
    """A 3-pass session; `act(sim, pen)` in a thread once pass 1's end is logged (joined)."""
    return record_acted(tmp_path, act, settle_s=0.1)


def _twice(sim, pen) -> None:
    _pull_and_replug(sim, pen)
    sim.time.sleep(0.05)
    _pull_and_replug(sim, pen)


def _verdicts(rec: Acted) -> list[tuple[bool, str]]:
    reports = _replays(rec)
    assert len(reports) == RUNS
    return [(r.match, str(r.difference)) for r in reports]


def _lax_settle(monkeypatch) -> list[str]:
    """A controller changed so that its reconnect leaves an ARMED pen armed (no DISARM in its
    handshake): a safety change in what the host sends. Returns the ports it left armed."""
    original = ConnectionMixin._settle_pen
    left_armed: list[str] = []

    def lax(self):
        t = self._first_report()
        if t.state.name == "ARMED":
            left_armed.append(self.port_url)
            self._eng.ops_done_s = self.clock.now()
            return "connected"  # leaves it armed
        return original(self)

    monkeypatch.setattr(ConnectionMixin, "_settle_pen", lax)
    return left_armed


def test_a_reconnect_that_no_longer_disarms_the_pen_is_a_difference(tmp_path, monkeypatch):
    rec = _record(tmp_path, _pull_and_replug)
    left_armed = _lax_settle(monkeypatch)  # after the recording: the live run was correct
    verdicts = _verdicts(rec)
    assert len(left_armed) >= RUNS, left_armed  # each replay's reconnect took the lax path
    assert all(not m for m, _ in verdicts), verdicts
    # the first difference is the DISARM the recorded handshake has and the replay never sent
    assert all("Disarm" in d and "reconnect" in d for _, d in verdicts), verdicts
    result = CliRunner().invoke(main, ["replay", rec.session_id, "--db", str(rec.path)])
    assert result.exit_code != 0, result.output
    assert "Disarm" in result.output, result.output


def test_two_reconnects_with_a_lax_second_settle_differ(tmp_path, monkeypatch):
    rec = _record(tmp_path, _twice)
    _lax_settle(monkeypatch)
    verdicts = _verdicts(rec)
    assert all(not m for m, _ in verdicts), verdicts
    assert all("Disarm" in d for _, d in verdicts), verdicts


def _rewrite(path: Path, change) -> None:
    """The recording rewritten with `change(channel, data) -> data` (an unsealed session's
    file: no hash in the pass log holds it)."""
    original = read_recording(path)
    path.unlink()
    writer = FrameWriter(path, {k: v for k, v in original.meta.items() if k != "format"},
                         start_s=0.0)
    for entry in original.entries:
        writer.add(entry.channel, entry.t_s, change(entry.channel, entry.data))
    writer.seal()


def test_a_reconnect_handshake_tampered_to_hide_an_armed_pen_is_no_match(tmp_path):
    """/reconnect/pen rewritten: the new connection's reports say IDLE where the pen said
    ARMED, so the recorded DISARM has no cause. The replayed controller sends none: a
    difference, never `match`."""
    rec = _record(tmp_path, _pull_and_replug)
    touched = []

    def change(channel: str, data: bytes) -> bytes:
        if channel != "/reconnect/pen":
            return data
        out = b""
        for frame in StreamDecoder().feed(data):
            msg = frame.message
            if isinstance(msg, Telemetry) and msg.state == FirmwareState.ARMED:
                msg = dataclasses.replace(msg, state=int(FirmwareState.IDLE))
                touched.append(1)
            out += encode(msg, frame.seq)
        return out

    _rewrite(rec.recording, change)
    assert touched
    verdicts = _verdicts(rec)
    assert all(not m for m, _ in verdicts), verdicts
    assert all("Disarm" in d for _, d in verdicts), verdicts


def test_a_reconnect_handshake_tampered_to_hide_its_disarm_is_caught(tmp_path):
    """/reconnect/host rewritten without its DISARM: the replayed controller sends one, still
    connecting, past the recorded handshake's end: a difference (no session's last word)."""
    rec = _record(tmp_path, _pull_and_replug)
    touched = []

    def change(channel: str, data: bytes) -> bytes:
        if channel != "/reconnect/host":
            return data
        frames = list(StreamDecoder().feed(data))
        if any(isinstance(f.message, Disarm) for f in frames):
            touched.append(1)
            return b""
        return data

    _rewrite(rec.recording, change)
    assert touched
    verdicts = _verdicts(rec)
    assert all(not m for m, _ in verdicts), verdicts
    assert all("Disarm" in d and "reconnect" in d for _, d in verdicts), verdicts


def test_a_recording_cut_in_the_reconnects_handshake_replays_as_match(tmp_path):
    """The host dies as the controller starts connecting anew (its `reconnect` input recorded,
    nothing of the new connection yet: the data directory copied as a crash leaves it): the
    attempt's outcome is past the cut, not "the port did not open"."""
    into = tmp_path / "crashed"
    taken = threading.Event()

    def crash_as_it_reconnects(sim, pen, session, log) -> None:
        def crash():
            if not taken.is_set():
                _snapshot(log, session, into)
                taken.set()

        def on_state(old, new, why):
            if new is State.CONNECTING:
                after(sim.clock, 0.0, crash)

        pen.add_state_listener(on_state)

    acted = record_acted(tmp_path, _pull_and_replug, before=crash_as_it_reconnects,
                         finish=lambda sim, *_: sim.time.wait_until(
                             taken.is_set, what="the crash", timeout_s=20))
    mcap = next((into / "recordings").glob("*.mcap"))
    recording = read_recording(mcap)
    assert not recording.finished
    assert b'"reconnect"' in b"".join(e.data for e in recording.channel("/input"))
    rec = Acted(into / "passlog.sqlite", acted.session_id, mcap)
    verdicts = _verdicts(rec)
    assert all(m for m, _ in verdicts), (verdicts, len(recording.channel("/reconnect/host")))
