"""`session.run`'s `quick_pass_s` ("shorten every pass (demos, tests)", rpc.describe) only
shortens: a pass planned shorter keeps its plan (a timed one its duration, one in impressions
its impressions), and the shortened profile is checked again against the pen's envelope. It
set every pass to quick_pass_s after the profile was checked: a 3 s pass ran 20 s."""

from __future__ import annotations

from datetime import datetime

from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import connect, run
from tests.smpdevice.service.virtual_service import (  # noqa: F401  (fixtures)
    CLEAR,
    PROFILE,
    held_service,
    virtual_sim,
)


def _played(service, quick_pass_s: float) -> list[dict]:
    async def main() -> list[dict]:
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        started = await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                technician="t", quick_pass_s=quick_pass_s)
        await op.next_notification("session.result", timeout_s=120)
        shown = await op.call("sessions.show", session_id=started["session_id"])
        await op.release()
        await op.close()
        return shown["passes"]

    return run(main())  # type: ignore[return-value]


def _seconds(record: dict) -> float:
    return (datetime.fromisoformat(record["ended_at"])
            - datetime.fromisoformat(record["started_at"])).total_seconds()


def test_quick_pass_s_never_makes_a_pass_longer_than_planned(service):
    # planned: top 3 s, crown 3 s, hairline 2 s, top 25 impressions of 120 ms (3 s)
    passes = _played(service, 20)
    assert len(passes) == 4, passes
    assert [round(_seconds(p)) for p in passes] == [3, 3, 2, 3], passes
    assert passes[3]["impressions"] == 25, passes[3]


def test_quick_pass_s_shortens_a_longer_pass(service):
    passes = _played(service, 2.5)  # the 2 s pass keeps its 2 s
    assert len(passes) == 4, passes
    seconds = [_seconds(p) for p in passes]
    assert all(s <= 2.7 for s in seconds), seconds
    assert 1.8 <= seconds[2] <= 2.2, seconds
