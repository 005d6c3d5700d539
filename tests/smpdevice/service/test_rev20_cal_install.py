"""Review 20 (calibration installs): the pen through the service runs on the newest calibration
its store holds, whatever left an older one in use.

1. An E-stop landing while `calibration.save` writes: the save answers `installed: false`, and
   the pen used to stay on the older calibration until the technician sent `calibration.end
   {id}`. Now the saved calibration is installed as soon as the latch is cleared, before any
   request received after the clear (the latch itself is never bypassed for it).
3. A session started through the service never checked the pen's calibration against the
   store's newest (`smp run` takes the store's newest as it connects): a calibration another
   program saved to the service's store (`smp calibrations import`) was ignored until a
   restart. Now each opening takes the store's newest, or is refused with `smp run`'s words
   when the newest may not be used (never an older one in its place).
Real service on loopback, the simulated pen on virtual time, the service's real SQLite store.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service import calibrating
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import WAIT_S, connect, measured_calibration, run, wait_until
from tests.smpdevice.service.test_service_work import CLEAR, PROFILE

RUN = {"profile": PROFILE, "screening": CLEAR, "technician": "t", "quick_pass_s": 0.3}


@pytest.fixture
def sim(vsim):
    """The service's pen on virtual time (as the service suite's `vsim`)."""
    return vsim


async def _in_use(client: Any) -> str | None:
    return ((await client.call("pen.identity"))["calibration"] or {}).get("calibration_id")


def _hold_the_save(monkeypatch: Any) -> tuple[threading.Event, threading.Event]:
    """The next `calibration.save` held in hand at its store write (its checks passed, the pen
    still calibrating): (received, go)."""
    received, go = threading.Event(), threading.Event()
    real = calibrating._save_new

    def held(service: Any, cal: Calibration) -> None:
        received.set()
        go.wait(WAIT_S)
        real(service, cal)

    monkeypatch.setattr(calibrating, "_save_new", held)
    return received, go


def test_a_save_overtaken_by_an_estop_is_installed_once_the_latch_is_cleared(
        service, sim, data_dir, monkeypatch):
    async def main() -> dict[str, Any]:
        tech = await connect(service, Role.TECHNICIAN)
        viewer = await connect(service, Role.VIEWER)
        await tech.drive(lease_ms=2000)
        in_use_before = await _in_use(viewer)
        await tech.call("calibration.begin")
        cal = await measured_calibration(tech, sim)
        received, go = _hold_the_save(monkeypatch)
        saving = asyncio.ensure_future(
            tech.call("calibration.save", calibration=cal.model_dump(mode="json")))
        await wait_until(received.is_set, what="calibration.save at its store write")
        assert (await viewer.call("pen.estop"))["confirmed"] is True  # during the write
        go.set()
        saved = await saving
        latched = await _in_use(viewer)
        try:
            await tech.call("session.run", **RUN)  # latched: no treatment at all
            refused = None
        except ServiceError as exc:
            refused = str(exc)
        await tech.call("pen.clear_faults", reason="false alarm, checked")
        # any request after the clear's answer comes after the install (the call worker's
        # order): no waiting on time
        await tech.call("pen.set_zone", zone="crown")
        after_clear = await _in_use(viewer)
        await tech.release()
        await tech.close()
        await viewer.close()
        return {"before": in_use_before, "saved": saved, "latched": latched,
                "refused": refused, "after_clear": after_clear}

    out = run(main())
    saved = out["saved"]
    assert saved["installed"] is False, saved
    ident = saved["calibration_id"]
    newest = CalibrationStore(data_dir / "calibrations.sqlite", readonly=True).latest(sim.serial)
    assert newest is not None and newest.calibration_id == ident
    assert out["after_clear"] == ident, (
        f"the store's newest is {ident}; after the clear the pen runs on {out['after_clear']}")
    assert out["latched"] == out["before"] != ident  # the latch was not bypassed to install
    assert out["refused"] is not None and "E-stop latched" in out["refused"]
    assert "once the latch is cleared" in saved["not_installed"]  # what the technician reads


def _other_program_saves(data_dir: Any, cal: Calibration) -> None:
    """What `smp calibrations import` does to the service's store meanwhile."""
    CalibrationStore(data_dir / "calibrations.sqlite").save(cal)


def _copy(cal: Calibration, ident: str, created_at: datetime) -> Calibration:
    return Calibration.model_validate({**cal.model_dump(), "calibration_id": ident,
                                       "created_at": created_at,
                                       "expires_at": created_at + timedelta(days=30)})


async def _open_a_session(service: Any) -> tuple[dict[str, Any] | None, str | None, str | None]:
    """session.run by a driving operator: (its answer or None, its refusal or None, the
    calibration in use once it answered)."""
    op = await connect(service, Role.OPERATOR)
    viewer = await connect(service, Role.VIEWER)
    await op.drive(lease_ms=2000)
    try:
        started, refused = await op.call("session.run", **RUN), None
        await viewer.next_notification("session.result", timeout_s=60)
    except ServiceError as exc:
        started, refused = None, str(exc)
    in_use = await _in_use(viewer)
    await op.release()
    await op.close()
    await viewer.close()
    return started, refused, in_use


def test_a_session_opens_on_the_stores_newest_calibration(service, sim, data_dir):
    given = service.pen.calibration
    assert given is not None
    newer = _copy(true_calibration(sim, technician="ana"), "imported0001", datetime.now(UTC))
    _other_program_saves(data_dir, newer)
    started, refused, in_use = run(_open_a_session(service))
    assert refused is None and started is not None, refused
    assert in_use == newer.calibration_id != given.calibration_id
    shown = run(_show(service, started["session_id"]))
    assert shown["session"]["calibration_id"] == newer.calibration_id, shown["session"]


async def _show(service: Any, session_id: str) -> dict[str, Any]:
    viewer = await connect(service, Role.VIEWER)
    shown = await viewer.call("sessions.show", session_id=session_id)
    await viewer.close()
    return shown


def test_a_newest_calibration_the_pen_may_not_use_refuses_the_session(service, sim, data_dir):
    given = service.pen.calibration
    assert given is not None
    ahead = _copy(true_calibration(sim, technician="ana"), "ahead0000001",
                  datetime.now(UTC) + timedelta(hours=3))  # made on a clock that ran ahead
    _other_program_saves(data_dir, ahead)
    started, refused, in_use = run(_open_a_session(service))
    assert started is None, "a session opened on a calibration the store has superseded"
    assert refused is not None
    assert "ahead0000001" in refused and "smp calibrate --service URL" in refused, refused
    assert "after this computer's clock" in refused, refused  # `smp run`'s own words
    assert in_use == given.calibration_id  # never replaced by it, nor anything opened
