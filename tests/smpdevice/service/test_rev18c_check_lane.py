# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
"""Review 18e: `session.check` (a driver calls it before session.run: `smp run --service`, the
console's Run page) runs in a lane of its own, never behind the viewers' record reads held on
a locked log in their 2-thread pool (before, it waited out their busy timeouts, 5 s each).
Real service, real simulator, real SQLite lock (another connection holds it exclusive)."""

from __future__ import annotations

import asyncio
import sqlite3

from simulators import PenSimulator
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from tests.smpdevice.service.conftest import (  # noqa: F401 (data_dir: a fixture)
    connect,
    data_dir,
    run,
    service_with_held_leases,
    wait_until,
)
from tests.smpdevice.service.virtual_service import PROFILE


def test_a_drivers_session_check_does_not_wait_behind_viewers_held_reads(data_dir):
    with PenSimulator(seed=5) as sim, service_with_held_leases(sim, data_dir) as handle:
        service = handle.server.service
        PassLog.open(service.passlog_path).close()  # the log exists, as on any station
        locker = sqlite3.connect(service.passlog_path, isolation_level=None)
        locker.execute("PRAGMA locking_mode=EXCLUSIVE")
        locker.execute("BEGIN EXCLUSIVE")  # another process holds the log (a backup, a writer)
        pool = service.viewer_reads

        async def main() -> tuple[list[str], dict]:
            viewers = [await connect(handle, Role.VIEWER) for _ in range(2)]
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            reads = [asyncio.ensure_future(v.call("sessions.list"))
                     for v in viewers for _ in range(2)]
            # both reader threads held on the lock, more reads queued behind them
            await wait_until(lambda: pool._work_queue.qsize() >= 1, what="viewers' reads held")
            check = asyncio.ensure_future(op.call("session.check", profile=PROFILE))
            done, _ = await asyncio.wait([check, *reads], return_when=asyncio.FIRST_COMPLETED)
            first = ["check" if task is check else "viewer read" for task in done]
            locker.close()  # the lock let go: the held reads end too
            await asyncio.gather(*reads, return_exceptions=True)
            checked = await check
            await op.release()
            for client in (*viewers, op):
                await client.close()
            return first, checked

        try:
            first, checked = run(main())
        finally:
            locker.close()
        assert first == ["check"], first
        assert checked["ok"] is True, checked
