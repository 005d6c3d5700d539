# ruff: noqa: F811 (fixtures imported from the suite's conftests, used as arguments)
"""rev18d (review 18h, b18h).
at the service's close, viewer reads queued behind reads held on a locked log are
left queued (`viewer_reads.shutdown(wait=False)`, no cancel_futures): each still runs after the
close, waiting out its 5 s busy timeout, two at a time, and the interpreter's exit joins the
pool's threads, so `smp serve` exits only after all of them (docs/service.md: a client holds
the exit at most 2 s). Real service, real simulator, real SQLite lock."""

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


def test_viewer_reads_queued_at_close_are_dropped_not_left_to_hold_the_exit(data_dir):
    with PenSimulator(seed=5) as sim:
        with service_with_held_leases(sim, data_dir) as handle:
            service = handle.server.service
            PassLog.open(service.passlog_path).close()
            locker = sqlite3.connect(service.passlog_path, isolation_level=None)
            locker.execute("PRAGMA locking_mode=EXCLUSIVE")
            locker.execute("BEGIN EXCLUSIVE")  # another process holds the log
            pool = service.viewer_reads

            async def main() -> None:
                viewers = [await connect(handle, Role.VIEWER) for _ in range(3)]
                reads = [asyncio.ensure_future(v.call("sessions.list"))
                         for v in viewers for _ in range(2)]
                await wait_until(lambda: pool._work_queue.qsize() >= 3,
                                 what="viewers' reads queued behind the held ones")
                assert not any(read.done() for read in reads)  # none answered: all held

            try:
                run(main())
            except BaseException:
                locker.close()
                raise
        try:  # the service closed; the lock still held (a backup running)
            drained = []
            while not pool._work_queue.empty():
                drained.append(pool._work_queue.get_nowait())
            left = [w for w in drained if w is not None]
        finally:
            for _ in range(2):  # the pool's threads end (the interpreter's exit joins them)
                pool._work_queue.put(None)
            locker.close()
        assert left == [], f"{len(left)} reads still queued after the close"
