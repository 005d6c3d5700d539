"""Review 15 (service, V2): a `session.stop` that comes while a `session.run` (or `session.resume`)
received before it is still being opened must refuse that run, nothing opened (docs/service.md,
methods table, `session.stop`: "A `session.run` or `session.resume` received before it and not
yet opened is refused (nothing opened)"; README: "a `session.stop` wins over every
`session.run` and `session.resume` the service received before it"). Instead the session is
opened (its id answered) and closed at once as `interrupted`; a resumed one, left open to be
resumed, is closed for good. (Run and stop sent back to back, without any hold, did the same
7 times in 8.)

The opening is held on a real file: the test holds the station's pass log's write lock
(`BEGIN IMMEDIATE`, as another writer would) while the run opens and the stop is received,
then lets go (well within SQLite's 5 s busy timeout). A real service, a simulated pen on
virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401 (fixtures)
    connect,
    data_dir,
    run,
    vsim,
    wait_until,
)
from tests.smpdevice.service.test_service_resume import clear_jam, faulted_session, log_path
from tests.smpdevice.service.virtual_service import (  # noqa: F401 (fixtures)
    CLEAR,
    PROFILE,
    held_service,
    virtual_sim,
)


@contextlib.contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """The pass log's SQLite write lock held by another connection until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
    finally:
        conn.rollback()
        conn.close()


async def opened_despite_a_stop(service, op, method: str, **params) -> object:
    """Send `method`; while it opens (past its stop check, its log held), a session.stop; then
    let it go on. Its answer (a ServiceError when refused)."""
    work = service.server.service.work
    with write_lock(log_path(service)):
        started = asyncio.ensure_future(op.call(method, **params))
        await wait_until(lambda: work._thread is not None and work._thread.is_alive(),
                         what="the session opening")
        asked = work.stops_asked  # stops and latches so far (the jam's latch counts too)
        stop = asyncio.ensure_future(op.call("session.stop"))
        await wait_until(lambda: work.stops_asked > asked, what="the stop received")
        assert not started.done(), "opened with its log held"
    try:
        answer: object = await started
    except ServiceError as exc:
        answer = exc
    await stop
    return answer


def test_a_stop_while_the_run_opens_refuses_it_nothing_opened(service, sim):
    async def main() -> tuple[object, int, int]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        await faulted_session(service, sim, op, viewer)  # the station's log exists
        await clear_jam(service, sim)
        with PassLog(log_path(service), readonly=True) as log:
            before = len(log.sessions())
        answer = await opened_despite_a_stop(service, op, "session.run", profile=PROFILE,
                                             screening=CLEAR, technician="ana",
                                             quick_pass_s=1.2, leave_open=True)
        if not isinstance(answer, ServiceError):  # opened: let it end before the log is read
            await viewer.next_notification("session.result", timeout_s=30)
        await op.close()
        await viewer.close()
        with PassLog(log_path(service), readonly=True) as log:
            return answer, before, len(log.sessions())

    answer, before, after = run(main())
    assert isinstance(answer, ServiceError), f"the run was opened after the stop: {answer}"
    assert after == before, "a session was opened (and closed) for it"


def test_a_stop_while_a_resume_opens_refuses_it_the_session_stays_open(service, sim):
    """The session left open must stay open (resumable), with no resumption recorded, never
    closed as `interrupted` by a stop that beat its resume's opening."""

    async def main() -> tuple[object, object, int]:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        sid = (await faulted_session(service, sim, op, viewer))["session_id"]
        await clear_jam(service, sim)
        answer = await opened_despite_a_stop(service, op, "session.resume", session_id=sid,
                                             technician="bo")
        if not isinstance(answer, ServiceError):
            await viewer.next_notification("session.result", timeout_s=30)
        await op.close()
        await viewer.close()
        with PassLog(log_path(service), readonly=True) as log:
            return answer, log.session(sid).closed_at, len(log.resumptions(sid))

    answer, closed_at, resumptions = run(main())
    assert isinstance(answer, ServiceError), (
        f"the resume was opened after the stop: {answer}; closed at {closed_at}, "
        f"{resumptions} resumption(s) recorded")
    assert closed_at is None, "the session left open was closed by a stop of a refused resume"
    assert resumptions == 0
