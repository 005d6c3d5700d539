"""A session whose close meets a broken recording still says how it ended (review 15a,
REVASYNC R05): its frame recording's file is removed from disk mid-session (a tidy-up tool, a
disk unmounted). `FrameWriter.seal()` raised FileNotFoundError in the session's close, so
`session.result` never came and the service's work status said "running" for good: the
service then refused pen.reconnect ("a session is still finishing") and `smp run --service`
waited 24 h. Real simulator, service, pass log and recording."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from simulators import PenSimulator
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle
from tests.smpdevice.service.conftest import (  # noqa: F401  (fixtures)
    connect,
    data_dir,
    run,
    service_with_held_leases,
    sim,
    wait_until,
)
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE

RESULT_WAIT_S = 20.0  # generous: it was published before the session thread ended


async def _stopped_session(service: ServiceHandle,
                           mid_session: Callable[[str], None]) -> dict[str, Any]:
    """Run a session, call `mid_session(session_id)` during its first pass, session.stop it;
    its session.result."""
    pen, work = service.pen, service.server.service.work
    viewer = await connect(service, Role.VIEWER)
    op = await connect(service, Role.OPERATOR)
    try:
        await op.drive(lease_ms=1000)
        sid = (await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="t",
                             quick_pass_s=5.0))["session_id"]
        await wait_until(lambda: pen.state is State.RUNNING, what="the first pass running")
        mid_session(sid)
        await op.call("session.stop")
        await wait_until(lambda: not work.busy(), what="the session thread to end")
        # It says "not running" before it ends, then its session.result (the old code: neither)
        assert (work.status() or {}).get("running") is False, (
            f"the session thread ended without its session.result: {work.status()}")
        return await viewer.next_notification("session.result", timeout_s=RESULT_WAIT_S,
                                              where=lambda r: r["session_id"] == sid)
    finally:
        await op.close()
        await viewer.close()


def test_a_session_whose_recording_is_gone_at_its_close_still_says_its_result(sim, data_dir):  # noqa: F811
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work

        def remove_the_recording(sid: str) -> None:
            recording = data_dir / "recordings" / f"{sid}.mcap"
            assert recording.is_file(), sorted(data_dir.rglob("*"))
            recording.unlink()

        result = cast(dict[str, Any], run(_stopped_session(service, remove_the_recording)))
        assert result["outcome"] == "interrupted", result  # closed as the technician asked
        assert result["left_open"] is False, result
        recording = result["summary"]["recording"]  # the close record says what is missing
        assert recording["sha256"] == "", recording
        assert recording["truncated"].startswith("write error:"), recording
        assert f"{result['session_id']}.mcap" in recording["truncated"], recording
        status = work.status() or {}
        assert status.get("running") is False, status  # pen.reconnect is allowed again
        assert service.pen.state is not State.RUNNING


def test_a_session_whose_close_raises_still_says_its_result_with_the_error(
        sim: PenSimulator, data_dir: Path) -> None:  # noqa: F811
    """Whatever the close raises (a full disk under the pass log, say): the one failure
    injected here, in place of SessionWork._finish, the close of a real session."""
    with service_with_held_leases(sim, data_dir) as service:
        work = service.server.service.work

        def close_fails(session: Any, client_id: str, epoch: int) -> Any:
            raise OSError(28, "No space left on device")

        def break_the_close(sid: str) -> None:
            work._finish = close_fails  # type: ignore[method-assign]

        result = cast(dict[str, Any], run(_stopped_session(service, break_the_close)))
        assert "closing the session failed: [Errno 28] No space left on device" in (
            result["error"] or ""), result
        assert result["outcome"] == "interrupted", result
        assert result["left_open"] is True, result  # the pass log still has it open
        status = work.status() or {}
        assert status.get("running") is False, status
