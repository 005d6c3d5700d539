# ruff: noqa: F811  (fixtures, imported)
"""Review 18 b18d: the close's needle stop never waits behind a pool (docs/service.md "When
smp serve stops": "without waiting on any client"). Viewers' record calls held on a locked
pass log run in their own bounded pool (never the loop's default one), and the close stops
the pen on a thread of its own even with the loop's default pool full (before: stopped only
once the held calls returned, 4.7 s)."""
from __future__ import annotations

import asyncio
import os
import sqlite3
import threading

from smpdevice.control.aio import run_in_new_thread
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.pen_service import VIEWER_READERS
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    connect,
    data_dir,
    drive_needle,
    run,
    service_with_held_leases,
    sim,
    wait_until,
)


def test_the_close_stops_the_needle_with_viewers_held_and_the_default_pool_full(sim, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    other = data_dir / "passlog-SMPOTHER.sqlite"
    with PassLog(other):
        pass
    holder = sqlite3.connect(other, isolation_level=None)  # another program holds it locked
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE held (a)")
    gate = threading.Event()
    seen: dict[str, object] = {}
    try:
        with service_with_held_leases(sim, data_dir) as handle:
            async def main() -> None:
                op = await connect(handle, Role.OPERATOR)
                await drive_needle(op, lease_ms=1000)
                await wait_until(lambda: sim.firmware.state.name == "RUNNING", what="needle")
                loop = handle.server.service.loop
                workers = min(32, (os.cpu_count() or 1) + 4)  # the default pool's size

                async def fill() -> None:  # the default pool taken by anything else
                    for _ in range(workers):
                        loop.run_in_executor(None, gate.wait)

                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fill(), loop))
                viewers = [await connect(handle, Role.VIEWER) for _ in range(VIEWER_READERS + 3)]
                calls = [asyncio.ensure_future(v.call("sessions.verify")) for v in viewers]
                pool = handle.server.service.viewer_reads  # both threads held, the rest queued
                await wait_until(lambda: len(pool._threads) == VIEWER_READERS
                                 and pool._work_queue.qsize() > 0,
                                 what="the viewers' pool to be busy")
                stopping = asyncio.wrap_future(run_in_new_thread(handle.stop, name="t-stop"))
                await wait_until(lambda: sim.firmware.state.name != "RUNNING"
                                 or any(c.done() for c in calls), what="needle or a call")
                seen["state"] = sim.firmware.state.name
                # answered: a call that returned (not one cut by the close, 1001)
                seen["answered"] = sum(c.done() and c.exception() is None for c in calls)
                seen["readers"] = len(pool._threads)  # bounded: the rest queue
                gate.set()
                await stopping
                for c in calls:
                    c.cancel()

            run(main())
    finally:
        gate.set()
        holder.close()
    assert seen["state"] != "RUNNING", seen
    assert seen["answered"] == 0, seen  # stopped before any held call returned
    assert seen["readers"] == VIEWER_READERS, seen
