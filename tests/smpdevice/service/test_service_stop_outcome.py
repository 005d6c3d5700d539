"""`session.stop` ends a session as `interrupted` (stopped by the technician), also when the
service had to stop the needle for it.

session.stop gives the session thread SELF_STOP_S to stop its own needle (one actor on the
pen); a session thread descheduled for longer (a loaded PC: CI, two cores) has its needle
stopped by the service instead. That thread then found its pen stopped rather than the stop
asked for, and the session was recorded `incomplete` ("a pass was stopped by the controller")
on the sheet, though the technician had asked for the stop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle

from .conftest import WAIT_S, connect, run, service_with_held_leases, wait_until
from .test_service_resume import CLEAR, PROFILE


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    """Driver leases that never lapse: the stop under test is the only end of the session."""
    with service_with_held_leases(sim, data_dir) as handle:
        yield handle


def test_a_stop_the_service_carried_out_for_a_descheduled_session_is_still_interrupted(
        service, sim, monkeypatch):
    pen = service.pen
    away, gone = threading.Event(), threading.Event()
    real_pause = pen.pause

    def descheduled(duration_s: float) -> None:
        """The session thread, between two looks at its pen, is away until the needle no
        longer runs (as if descheduled past SELF_STOP_S); it waits on that, not on a time."""
        if away.is_set() and threading.current_thread().name == "smp-service-session":
            gone.set()
            tick = threading.Event()  # never set: a 10 ms poll, bounded by WAIT_S
            for _ in range(int(WAIT_S / 0.01)):
                if pen.state is not State.RUNNING or tick.wait(0.01):
                    break
        real_pause(duration_s)

    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                      quick_pass_s=5.0, leave_open=True)
        await viewer.next_notification("session.progress", timeout_s=WAIT_S)
        monkeypatch.setattr(pen, "pause", descheduled)
        away.set()
        await wait_until(gone.is_set, what="the session thread away (its needle running)")
        assert await op.call("session.stop") == {"ok": True}
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        await op.close()
        await viewer.close()
        return result

    result = run(main())
    assert sim.firmware.state is not FirmwareState.RUNNING
    # Old code: "incomplete", with "SESSION INCOMPLETE: ... stopped by the controller".
    assert result["outcome"] == "interrupted", result["outcome"]
    assert result["left_open"] is False  # the technician's end: closed, not left to resume
    assert "stopped by the technician" in result["aftercare"]
