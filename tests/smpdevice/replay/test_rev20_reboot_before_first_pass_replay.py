"""Review 20: a brownout just as a session opens (pen time 0.3 s of
examples/session1_base_density.yaml with pensim seed 3): the pen's EVENT BOOTED latched the
controller after the preflight saw it idle and before the session's recording began; the
session opened, sent nothing and was left open (exit 4, 0 passes). `smp replay last` said
`first difference: command #0 at t=0.000 s: expected no more commands (the recording ends
here); got SetSetpoints {...}`: the recording's `/meta` `state` was read before its tap and
state listener were set (the reboot's bytes and the latch fell between, in neither), and the
replay started its controller idle. Now the recording starts at one point and carries the
controller's state there (`/meta` `start`, with the latch's reason), the replay starts its
controller in it, and a latch the live session saw at its first look is waited for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from smpdevice.control import State
from smpdevice.records.frames import FrameWriter, read_recording, recording_path
from smpdevice.replay.runner import replay_session
from smpdevice.sessions.screening import parse_screening
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.replay.conftest import (
    CLEAR,
    calibrated_station,
    replay_last,
    short_profile,
    smp_process,
)

PEN = "pensim://?seed=3&clock=virtual"
REPLAYS = 5  # the replay's threads race the session's first look: each replay must match


def _replays(passlog: Any, session_id: str) -> list[str]:
    out = []
    for _ in range(REPLAYS):
        report = replay_session(passlog, session_id)
        if not report.match:
            out.append(str(report.difference))
    return out


class _LatchAsTheHeaderIsWritten:
    """The pass log, whose session header a latch overtakes: it lands after the preflight saw
    the pen idle and before the session's recording starts (`latch` runs then)."""

    def __init__(self, log: Any, latch: Any, pen: Any) -> None:
        self._log, self._latch, self._pen = log, latch, pen

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def open_session(self, **header: Any) -> str:
        session_id = self._log.open_session(**header)
        self._latch()
        self._pen.wait_for_state(State.FAULT, State.ESTOP, timeout_s=2.0)
        return session_id


pytestmark = pytest.mark.virtual_time


def test_a_reboot_before_the_recording_starts_is_its_start_and_replays_as_match(
        sim, pen, passlog):
    log = _LatchAsTheHeaderIsWritten(passlog, lambda: sim.inject("brownout"), pen)
    session = TreatmentSession.open(pen, log, short_profile(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    assert session.play() == []  # latched before its first look: nothing sent
    session.close()
    assert _replays(passlog, session.session_id) == []
    rec = read_recording(recording_path(passlog.path, session.session_id))
    start = rec.meta["start"]
    assert start["state"] == "fault" and "rebooted" in start["reason"], start
    assert rec.meta["state"] == "fault"
    assert rec.channel("/host") == [] and rec.channel("/state") == []


def test_an_estop_before_the_recording_starts_then_its_clear_replay_as_match(
        sim, pen, passlog):
    """An E-stop latched as the recording starts: `start` names it, the technician's clear
    while the session is open is the first `/state` change (from `estop`), and it replays."""
    log = _LatchAsTheHeaderIsWritten(passlog, pen.estop, pen)
    session = TreatmentSession.open(pen, log, short_profile(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    assert session.play() == []
    pen.clear_faults()
    session.close()
    assert _replays(passlog, session.session_id) == []
    rec = read_recording(recording_path(passlog.path, session.session_id))
    assert rec.meta["start"]["state"] == "estop", rec.meta["start"]
    assert "E-stop" in rec.meta["start"]["reason"]
    changes = [json.loads(e.data) for e in rec.channel("/state")]
    assert changes[:1] == [{"old": "estop", "new": "idle", "reason": changes[0]["reason"]}]


def test_a_recording_without_its_start_state_replays_as_before(sim, pen, passlog):
    """Made before `start` was kept: nothing is waited for at its start; one that began idle
    matches as it did."""
    session = TreatmentSession.open(pen, passlog, short_profile(passes=2), technician="ana",
                                    screening=parse_screening(CLEAR))
    session.play()
    session.suspend()  # left open: no hash links its file, which can be rewritten
    path = recording_path(passlog.path, session.session_id)
    original = read_recording(path)
    assert original.meta["start"] == {"state": "idle", "reason": None}
    path.unlink()
    writer = FrameWriter(path, {k: v for k, v in original.meta.items()
                                if k not in ("start", "format")}, start_s=0.0)
    for entry in original.entries:
        writer.add(entry.channel, entry.t_s, entry.data)
    writer.seal()
    assert "start" not in read_recording(path).meta
    report = replay_session(passlog, session.session_id)
    assert report.match, report.difference


def test_brownout_as_the_session_opens_replays_as_match(tmp_path_factory, tmp_path,
                                                         monkeypatch):
    """The reviewer's run: wherever the reboot lands (before the recording's start: its start
    state; after: its `/state`), live nothing is sent and every replay matches (`smp run` a
    process of its own, as live; `smp replay` in this one: a fresh process cost ten times the
    replay; each replay from a fresh controller all the same)."""
    env = calibrated_station(tmp_path_factory, tmp_path / "data", monkeypatch, PEN)
    run = smp_process(env, "run", "examples/session1_base_density.yaml", "--port",
                      f"{PEN}&faults=brownout@0.3", "-t", "ana", "--screening",
                      "examples/screening_clear.yaml")
    assert run.returncode == 4, run.stdout[-800:]  # the reboot latched POWER_RESET
    differences = []
    for _ in range(REPLAYS):
        verdict = replay_last(env)
        if verdict.exit_code != 0:
            differences.append(verdict.output.strip().splitlines()[-1][:300])
    assert differences == []
