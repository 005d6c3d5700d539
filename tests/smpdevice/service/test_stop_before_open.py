"""A session.stop wins over every session.run received before it (review 15a, REV2 R03): one
that has not opened yet is refused and opens nothing. Before, the launch cleared the stop
flags and the session opened and played after the stop had been answered (the CLI's Ctrl-C
sends exactly that stop when session.run's answer is late)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    WAIT_S,
    connect,
    data_dir,
    run,
    service_with_held_leases,
    sim,
    wait_until,
)
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE


def test_a_session_stop_wins_over_a_session_run_not_yet_opened(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work
        received, go = threading.Event(), threading.Event()
        start = work.start

        def slow_start(client_id: str, p: dict[str, Any], *rest: Any) -> dict[str, Any]:
            received.set()  # in hand, its checks not yet done (a slow pass log, say)
            go.wait(WAIT_S)
            return start(client_id, p, *rest)

        work.start = slow_start  # type: ignore[method-assign]

        async def main() -> None:
            op = await connect(service, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            first = asyncio.ensure_future(op.call(
                "session.run", profile=PROFILE, screening=CLEAR, technician="t",
                quick_pass_s=0.4))
            await wait_until(received.is_set, what="session.run in hand")
            assert await op.call("session.stop") == {"ok": True}
            go.set()
            with pytest.raises(ServiceError) as refused:
                await first
            assert "session.stop came after this request" in str(refused.value)
            assert work.status() is None  # nothing was opened
            # a session.run sent after the stop is not lost to it
            again = await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                  technician="t", quick_pass_s=0.4)
            assert again["session_id"]
            await op.call("session.stop")
            await wait_until(lambda: not (work.status() or {}).get("running"),
                             what="the second session ended")
            await op.close()

        run(main())
