"""Review 18e: session.run (and session.resume) run under the claim held when the request
arrived, not the one held after its profile was parsed: a connection that loses the drive
and claims it again while its profile is parsed opens nothing (NotDriving). The test pauses
`parse_profile` (the only hook: the window is its parse); everything else is the service's
own path, with the real simulator."""

from __future__ import annotations

import asyncio
import threading

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import WAIT_S, connect, run
from tests.smpdevice.service.virtual_service import (  # noqa: F401  (fixtures)
    CLEAR,
    PROFILE,
    held_service,
    virtual_sim,
)


def test_a_claim_lost_and_taken_again_while_the_profile_is_parsed_opens_nothing(
        service, monkeypatch):
    work = service.server.service.work
    parsing, go = threading.Event(), threading.Event()
    real_parse = work.parse_profile

    def paused_parse(*args, **kwargs):
        parsing.set()
        go.wait(WAIT_S)
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(work, "parse_profile", paused_parse)
    lease = service.server.service.lease

    async def main() -> tuple[object, object]:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        asked = asyncio.ensure_future(op.call(
            "session.run", profile=PROFILE, screening=CLEAR, technician="t",
            quick_pass_s=0.5))
        try:
            assert await asyncio.to_thread(parsing.wait, WAIT_S), "never parsed"
            epoch = lease.epoch
            await op.release()
            await op.drive(lease_ms=1000)  # the same connection, a new claim
            assert lease.epoch != epoch and lease.holder() == op.client_id
        finally:
            go.set()
        try:
            answer: object = await asked
        except Exception as exc:  # the RPC error
            answer = exc
        listed = await op.call("sessions.list")
        await op.release()
        await op.close()
        return answer, listed

    answer, listed = run(main())
    assert isinstance(answer, Exception) and "drive" in str(answer), answer
    assert listed["sessions"] == [], listed
