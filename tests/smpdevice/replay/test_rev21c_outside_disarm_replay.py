"""Session 21c (RR item 4): a technician's DISARM between two passes of one zone was no
recorded input. The session keeps the pen armed from one pass to the next in the same zone; to
swap the calibration between them (idle only) the technician disarms it from the console (a
service client's `pen.disarm`). The replayed session, which never disarms there by itself,
differed at that DISARM (`expected Disarm {}; got SetSetpoints ...`), and any disarm from
outside was indistinguishable from the session's own: a DISARM frame cannot be told by its
type. The service's `pen.disarm` now notes it at its source (`note_disarm`, as `note_pen_stop`
does for its stop): a `disarm` input, which the replay applies at its point.

Virtual time, the real simulator behind a real service, the real controller, pass log (SQLite)
and recording; the session holds at its first pass's end (its pass log's `end_pass`), so the
client's disarm and the swap come between the passes, never in a race with them."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from firmware_protocol import MsgType, StreamDecoder
from smpdevice.control.calibration import Calibration
from smpdevice.passlog import PassLog
from smpdevice.paths import pass_log_paths
from smpdevice.records.frames import read_recording
from smpdevice.replay import inputs as replay_inputs
from smpdevice.replay.runner import replay_session
from smpdevice.service.auth import Role
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.conftest import fit_points
from tests.smpdevice.replay.conftest import record_acted
from tests.smpdevice.replay.test_replay_inputs import inputs_of
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    WAIT_S,
    connect,
    data_dir,
    run,
    service_with_held_leases,
    vsim,
)

pytestmark = pytest.mark.virtual_time

RUNS = 2  # each replay from a fresh controller: its verdict never depends on the threads
CLEAR = {name: False for name in QUESTIONS}
# two passes in one zone (the pen stays armed between them), then another zone (the
# session's own disarm), each short: the session plays in well under a second of pen time
PROFILE = """\
schema_version: 1
session_kind: base_density
client_ref: C-0042
zones:
  top:   {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, period_ms: 120}
  crown: {needle: 1RL 0.25mm, depth_mm: 0.40, speed_hz: 90, duty_pct: 40, period_ms: 120}
plan:
  - {zone: top, duration_s: 0.3}
  - {zone: top, duration_s: 0.3}
  - {zone: crown, duration_s: 0.3}
"""


def _other(sim: Any) -> Calibration:
    """Another fit of the same pen: 0.2 mm more offset, so every depth is sent otherwise."""
    offset_mm = -sim.model.offset_mm + 0.2
    return Calibration.linear(pen_serial=sim.serial, technician="bo", offset_mm=offset_mm,
                              gain=sim.model.gain, **fit_points(
                                  offset_mm, sim.model.gain,
                                  (sim.model.speed_min_hz, sim.model.speed_max_hz)))


def _served_with_a_swap(sim: Any, data_dir: Path, monkeypatch: Any,  # noqa: F811
                        disarm: bool = True) -> tuple[dict[str, Any], Path]:
    """A served session held at its first pass's end: the console's `pen.disarm` (unless not
    `disarm`), then another calibration installed on the service's controller (as the service
    installs its store's newest, in its call worker; idle only), then the rest plays. Its
    result and its recording."""
    ended, go_on = threading.Event(), threading.Event()
    original = PassLog.end_pass

    def end_pass(self: Any, *args: Any, **kwargs: Any) -> Any:  # the session's thread
        result = original(self, *args, **kwargs)
        if not ended.is_set():
            ended.set()
            go_on.wait(WAIT_S * 2)  # (a hang guard, never the test's pace)
        return result

    monkeypatch.setattr(PassLog, "end_pass", end_pass)
    with service_with_held_leases(sim, data_dir) as served:
        async def main() -> dict[str, Any]:
            op = await connect(served, Role.OPERATOR)
            viewer = await connect(served, Role.VIEWER)
            try:
                await op.drive(lease_ms=5000)
                await op.call("session.run", profile=PROFILE, screening=CLEAR,
                              technician="ana")
                assert await asyncio.to_thread(ended.wait, WAIT_S), "pass 1 never ended"
                assert served.pen.state.value == "armed"  # kept armed for the same zone
                if disarm:
                    await op.call("pen.disarm")  # the console's Disarm button
                    service = served.server.service
                    await service.apen.call(service.pen.set_calibration, _other(sim))
                go_on.set()
                return await viewer.next_notification("session.result", timeout_s=WAIT_S)
            finally:
                go_on.set()
                await op.close()
                await viewer.close()

        result = run(main())
    assert isinstance(result, dict)
    recording = data_dir / "recordings" / f"{result['session_id']}.mcap"
    (log_path,) = [p for p in pass_log_paths() if p.exists()]
    assert recording.parent == log_path.parent / "recordings"
    return result, log_path


def _disarms_sent(recording: Path) -> int:
    decoder = StreamDecoder()
    frames = [f for e in read_recording(recording).channel("/host") for f in decoder.feed(e.data)]
    return sum(1 for f in frames if f.message.TYPE == MsgType.DISARM)


def _replays(log_path: Path, session_id: str, runs: int) -> list[Any]:
    with PassLog(log_path, readonly=True) as log:
        return [replay_session(log, session_id) for _ in range(runs)]


def test_a_console_disarm_and_a_swap_between_passes_of_one_zone_replay_as_a_match(
        vsim, data_dir, monkeypatch):  # noqa: F811
    result, log_path = _served_with_a_swap(vsim, data_dir, monkeypatch)
    assert result["outcome"] == "completed", result
    sid = result["session_id"]
    for report in _replays(log_path, sid, RUNS):
        assert report.match, (report.difference, report.notes)
    with PassLog(log_path, readonly=True) as log:
        named = [(p.zone, (p.calibration or {}).get("calibration_id"))
                 for p in log.passes(sid)]
    assert [zone for zone, _ in named] == ["top", "top", "crown"]
    assert named[0][1] != named[1][1] == named[2][1], named  # the swap played on
    recording = data_dir / "recordings" / f"{sid}.mcap"
    disarms = [i for i in inputs_of(recording) if i["kind"] == "disarm"]
    assert [(d["state"], d["source"].startswith("pen.disarm")) for d in disarms] == [
        ("armed", True)], disarms
    # the session's own disarms (for crown, at its close) went out too, and are not inputs
    assert _disarms_sent(recording) >= 3


def test_without_its_disarm_input_the_recording_differs_at_that_disarm(
        vsim, data_dir, monkeypatch):  # noqa: F811
    """As a recording made before disarms were kept (or read by a version that does not know
    them: the entry is skipped, never guessed): the replayed session never disarms there."""
    result, log_path = _served_with_a_swap(vsim, data_dir, monkeypatch)
    monkeypatch.setattr(replay_inputs, "KINDS",
                        tuple(k for k in replay_inputs.KINDS if k != "disarm"))
    (report,) = _replays(log_path, result["session_id"], 1)
    assert not report.match
    assert report.difference.what == "command", report.difference
    assert report.difference.expected.startswith("Disarm"), report.difference
    assert not report.difference.got.startswith("Disarm"), report.difference


def test_a_served_session_s_own_disarms_are_never_inputs(vsim, data_dir, monkeypatch):  # noqa: F811
    """No client disarms: the session's disarm for another zone and at its close are its own
    decisions, compared, never recorded as inputs; it replays as a match."""
    result, log_path = _served_with_a_swap(vsim, data_dir, monkeypatch, disarm=False)
    recording = data_dir / "recordings" / f"{result['session_id']}.mcap"
    assert [i for i in inputs_of(recording) if i["kind"] == "disarm"] == []
    assert _disarms_sent(recording) >= 2
    (report,) = _replays(log_path, result["session_id"], 1)
    assert report.match, (report.difference, report.notes)


def test_an_integrator_s_session_disarming_by_itself_records_no_disarm_input(tmp_path):
    """`TreatmentSession.play()` in a program (a zone change between passes, its close):
    no `disarm` input."""
    acted = record_acted(tmp_path, None, passes=3)
    kinds = [json.loads(e.data).get("kind")
             for e in read_recording(acted.recording).channel("/input")]
    assert "disarm" not in kinds, kinds
    assert _disarms_sent(acted.recording) >= 2
