"""A session plays under the claim its request was made under (the epoch launch checked), not
one taken when play starts: when its connection loses the drive and claims it again between
the session's first record and the start of play, nothing plays; the session ends as for a
lost driver (closed `incomplete`, or left open with `leave_open`; the service log names the
cause). Before, it played every pass under the new claim, which no request had asked for.

The test pauses the session thread right after TreatmentSession.open recorded the session
(the only hook: the window is a few lines wide); everything else is the service's own path."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smpdevice.service.auth import Role
from smpdevice.sessions.session import TreatmentSession
from tests.smpdevice.service.conftest import WAIT_S, connect, run
from tests.smpdevice.service.virtual_service import (  # noqa: F401  (fixtures)
    CLEAR,
    PROFILE,
    held_service,
    virtual_sim,
)


@pytest.mark.parametrize("leave_open", [False, True])
def test_a_claim_lost_and_taken_again_before_play_plays_nothing(service, monkeypatch,
                                                                 leave_open):
    recorded, go = threading.Event(), threading.Event()
    real_open = TreatmentSession.open.__func__

    def paused_open(cls, *args, **kwargs):
        session = real_open(cls, *args, **kwargs)  # the session's first record is made
        recorded.set()
        go.wait(WAIT_S)
        return session

    monkeypatch.setattr(TreatmentSession, "open", classmethod(paused_open))
    lease = service.server.service.lease

    async def main() -> tuple[dict, dict, list]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        asked = asyncio.ensure_future(op.call(
            "session.run", profile=PROFILE, screening=CLEAR, technician="t",
            quick_pass_s=0.5, leave_open=leave_open))
        try:
            assert await asyncio.to_thread(recorded.wait, WAIT_S), "the session never opened"
            epoch = lease.epoch
            await op.release()
            await op.drive(lease_ms=1000)  # the same connection, a new claim
            assert lease.epoch != epoch and lease.holder() == op.client_id
        finally:
            go.set()
        started = await asked
        told = []
        while True:
            method, params = await viewer.next_event({"session.pass", "session.result"},
                                                     timeout_s=WAIT_S)
            if method == "session.result":
                break
            told.append(params)
        shown = await op.call("sessions.show", session_id=started["session_id"])
        await op.release()
        await op.close()
        await viewer.close()
        return params, shown, told

    result, shown, told = run(main())
    assert told == [] and shown["passes"] == [], (told, shown["passes"])
    assert result["left_open"] is leave_open, result
    recorded_session = shown["session"]
    if leave_open:  # to be resumed, as after a driver lost mid-session
        assert recorded_session["closed_at"] is None, recorded_session
    else:  # closed `incomplete` (nobody asked a stop: never `interrupted`), as docs/service.md
        assert result["outcome"] == "incomplete", result
        assert recorded_session["summary"]["outcome"] == "incomplete", recorded_session
