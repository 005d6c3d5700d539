"""REV2B-7: a calibration that expires between passes through the service: `session.result`
says why the session ended (`cause`, naming the expiry), as `smp run` at the pen's port does;
its outcome (`incomplete`) cannot. Real service, sockets and SQLite; the pen on virtual time;
the validity's wall clock moved 31 days on during pass 1."""

from __future__ import annotations

import threading
from datetime import timedelta

import smpdevice.control.calibration as calibration_module
from simulators import PenSimulator
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle

from .conftest import WAIT_S, InNeedleRun, connect, run
from .virtual_service import CLEAR, PROFILE, held_service, virtual_sim  # noqa: F401 (fixtures)


def _result(service: ServiceHandle, sim: PenSimulator, during_pass_1=None) -> dict:
    async def main() -> dict:
        viewer = await connect(service, Role.VIEWER)
        op = await connect(service, Role.OPERATOR)
        moved = InNeedleRun(sim, 0, during_pass_1) if during_pass_1 else None
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                      quick_pass_s=1.2, leave_open=True)
        result = await viewer.next_notification("session.result", timeout_s=WAIT_S)
        assert moved is None or moved.fired.is_set()
        await op.close()
        await viewer.close()
        return result

    return run(main())


def test_the_result_of_a_session_whose_calibration_lapsed_names_the_expiry(service, sim,
                                                                           monkeypatch):
    month_on = threading.Event()
    real_today = calibration_module.today_utc
    monkeypatch.setattr(calibration_module, "today_utc",
                        lambda: real_today() + timedelta(days=31 if month_on.is_set() else 0))
    result = _result(service, sim, month_on.set)
    assert result["outcome"] == "incomplete" and result["left_open"] is True, result
    cause = result["cause"]
    assert isinstance(cause, str) and "expired on" in cause and "Recalibrate" in cause, result


def test_a_session_that_played_through_has_no_cause(service, sim):
    result = _result(service, sim)
    assert result["outcome"] == "completed", result
    assert "cause" in result and result["cause"] is None, result
