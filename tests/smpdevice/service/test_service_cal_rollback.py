"""Review 3, R05 (safety): `calibration.end {calibration_id}` installs only the calibration
`calibration.save` answered in this connection's current run, never an older stored one (a
rollback to a calibration from before the actuator was serviced)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.conftest import fit_points

from .conftest import connect, measured_calibration, run


@pytest.fixture
def sim(vsim):
    """The pen on virtual time (its clock driven by the service's controller): moves, spins
    and gauge readings follow the pen's own time, as fast as the computer computes them; the
    clients' leases stay on wall time, as ever."""
    return vsim


async def _end_with(service, ident: str) -> ServiceError | None:
    tech = await connect(service, Role.TECHNICIAN)
    await tech.drive(lease_ms=2000)
    await tech.call("calibration.begin")
    try:
        await tech.call("calibration.end", calibration_id=ident)
        return None
    except ServiceError as exc:
        await tech.call("calibration.end")
        return exc
    finally:
        await tech.release()
        await tech.close()


def test_end_refuses_a_stored_calibration_not_saved_by_this_run(service, sim):
    old = Calibration.linear(pen_serial=sim.serial, technician="ana",
                             offset_mm=-sim.model.offset_mm + 1.2, gain=sim.model.gain,
                             simulated=True, created_at=datetime.now(UTC) - timedelta(days=3),
                             **fit_points(-sim.model.offset_mm + 1.2, sim.model.gain))
    CalibrationStore().save(old)  # superseded: the pen was serviced since
    before = service.pen.calibration

    refused = run(_end_with(service, old.calibration_id))
    assert refused is not None and "in this run" in str(refused)
    assert service.pen.calibration is before


def test_an_id_saved_in_an_earlier_run_is_not_installed_by_a_later_one(service, sim):
    """Saved (and checked) in one run, left un-installed: a later run cannot install it."""
    async def first() -> str:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        await tech.call("calibration.begin")
        cal = await measured_calibration(tech, sim)
        saved = await tech.call("calibration.save", calibration=cal.model_dump(mode="json"))
        await tech.call("calibration.end")  # keeps the previous calibration
        await tech.release()
        await tech.close()
        return saved["calibration_id"]

    ident = run(first())
    before = service.pen.calibration
    refused = run(_end_with(service, ident))
    assert refused is not None and "in this run" in str(refused)
    assert service.pen.calibration is before
