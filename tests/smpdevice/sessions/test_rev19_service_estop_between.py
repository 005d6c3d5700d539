"""Review 19 (fixd1): an E-stop through the service between two passes, cleared before the
session's thread sets up the next pass (its pass log slow to write pass 1's end).

README "Resuming an interrupted session": "An E-stop, a fault or a lost pen between two passes
ends the run as one mid-pass would (exit 5, 4 or 6, left open), also when it was cleared or
the pen reconnected before the next pass". docs/safety.md "Between a session's passes": "An
E-stop, a fault or a lost link since ends it with that outcome (exit 5, 4, 6; left open to
resume), also when cleared or reconnected before the next pass".
Found: the service's E-stop also asks the session to stop (`request_stop`: its `should_stop`),
which play() looks at before the interruption: the session ends `interrupted` (exit 130),
judged on the idle pen. And its recording does not replay: "first difference: command #5 ...
expected EStop {}; got Disarm {}" (docs/simulator.md: a clear sent while the session is open is
recorded as the technician's input and replayed at its point).

Real service on loopback, virtual pen, real pass log; the session's thread is held right after
pass 1's end is recorded while a viewer E-stops and a technician clears."""

# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
from __future__ import annotations

import threading
from typing import Any

import pytest

from smpdevice.passlog import PassLog as ReadLog
from smpdevice.paths import pass_log_paths
from smpdevice.records.sqlite import PassLog
from smpdevice.replay.runner import replay_session
from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    WAIT_S,
    connect,
    data_dir,
    run,
    service_with_held_leases,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE


@pytest.fixture
def sim(vsim):
    return vsim


def _estop_and_clear_after_pass_1(sim, data_dir, monkeypatch) -> tuple[dict[str, Any], Any]:
    """A 4-pass `session.run` (leave_open, as `smp run --service`); pass 1's end recorded, a
    viewer's E-stop and a technician's clear; then the session goes on. (result, replay)."""
    ended, go = threading.Event(), threading.Event()
    original = PassLog.end_pass

    def held_end_pass(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if not ended.is_set():  # pass 1 recorded: the session's thread waits here
            ended.set()
            go.wait(WAIT_S)
        return result

    monkeypatch.setattr(PassLog, "end_pass", held_end_pass)
    with service_with_held_leases(sim, data_dir) as service:

        async def main() -> dict[str, Any]:
            viewer = await connect(service, Role.VIEWER)
            tech = await connect(service, Role.TECHNICIAN)
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="t",
                          quick_pass_s=0.3, leave_open=True)
            await wait_until(ended.is_set, what="pass 1 recorded")
            assert (await viewer.call("pen.estop"))["confirmed"] is True
            await tech.call("pen.clear_faults", reason="the client moved; safe now")
            go.set()
            result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
            for client in (op, tech, viewer):
                await client.close()
            return result

        result = run(main())
    monkeypatch.setattr(PassLog, "end_pass", original)
    (path,) = [p for p in pass_log_paths() if p.exists()]
    with ReadLog(path, readonly=True) as log:
        report = replay_session(log, result["session_id"])
    return result, report


def test_an_estop_cleared_between_passes_through_the_service_is_an_estop(
        sim, data_dir, monkeypatch):
    result, _ = _estop_and_clear_after_pass_1(sim, data_dir, monkeypatch)
    assert result["summary"]["outcomes"] == {"completed": 1}, result["summary"]
    assert result["left_open"] is True, result
    assert result["outcome"] == "estop", (result["outcome"], result["summary"])  # exit 5


def test_that_session_replays(sim, data_dir, monkeypatch):
    _, report = _estop_and_clear_after_pass_1(sim, data_dir, monkeypatch)
    assert report.match, report.difference
    # at the first try: the check between passes waits for the recorded inputs, not on timing
    assert not [note for note in report.notes if "matched on replay" in note], report.notes
