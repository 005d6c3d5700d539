"""Review 12, REVF-6 through the service: a calibration that expires between passes ends the
session as any pass not played does (no error; outcome `incomplete`) and leaves it OPEN, to be
resumed once the pen is recalibrated, as `smp run` does. Before the fix `left_resumable` closed
it (`incomplete`, its sheet given): nothing more could be played of it. Real service, sockets
and SQLite; the pen on virtual time; the validity's wall clock moved 31 days on during pass 1."""

from __future__ import annotations

import threading
from datetime import timedelta

import smpdevice.control.calibration as calibration_module
from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role

from .conftest import WAIT_S, InNeedleRun, connect, run
from .virtual_service import CLEAR, PROFILE, held_service, virtual_sim  # noqa: F401 (fixtures)


def test_a_calibration_expiring_between_passes_leaves_the_session_open(service, sim,
                                                                       monkeypatch):
    month_on = threading.Event()
    real_today = calibration_module.today_utc
    monkeypatch.setattr(calibration_module, "today_utc",
                        lambda: real_today() + timedelta(days=31 if month_on.is_set() else 0))

    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        moved = InNeedleRun(sim, 0, month_on.set)  # during pass 1
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                      quick_pass_s=1.2, leave_open=True)
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        assert moved.fired.is_set()
        await op.close()
        await viewer.close()
        return result

    result = run(main())
    assert result["error"] is None, result["error"]
    assert result["outcome"] == "incomplete" and result["left_open"] is True, result
    with PassLog.open(service.server.service.passlog_path, readonly=True) as log:
        record = log.session(result["session_id"])
        assert record.closed_at is None
        assert [p.outcome for p in log.passes(record.session_id)] == ["completed"]
