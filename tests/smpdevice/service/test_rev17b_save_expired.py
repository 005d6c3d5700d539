"""Review 17 (b17b, fixed): `calibration.save` stored a calibration that had already expired, and
being saved last it superseded the pen's valid calibration. docs/service.md: the service checks
a calibration "(it must belong to this pen, ... be made within 10 minutes of the service's
clock and expire within 366 days, and pass every check of a calibration), saves it ... and only
then installs what its store holds"; docs/technicians.md: "a run never falls back to an older
calibration". `calibration.end` then refuses it (expired), the pen keeps its old calibration in
memory, but the store's newest row for the pen is the expired one: after a restart of the
service (or `smp calibrations list`) the pen has no valid calibration."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401 (fixtures)
    connect,
    data_dir,
    measured_calibration,
    run,
    service,
)


@pytest.fixture
def sim(vsim):
    """The service's pen on virtual time (conftest's `vsim`)."""
    return vsim


def test_an_already_expired_calibration_is_not_saved(service, sim, data_dir):  # noqa: F811
    async def main() -> tuple[Calibration, str | None]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        await tech.call("calibration.begin")
        honest = await measured_calibration(tech, sim)
        await tech.call("calibration.save", calibration=honest.model_dump(mode="json"))
        await tech.call("calibration.end", calibration_id=honest.calibration_id)
        await tech.call("calibration.begin")  # a second run, ending in an expired calibration
        again = await measured_calibration(tech, sim)
        now = datetime.now(UTC)
        sent = Calibration.model_validate({
            **again.model_dump(), "calibration_id": uuid.uuid4().hex[:12],
            "created_at": now - timedelta(seconds=300), "expires_at": now - timedelta(seconds=1)})
        try:
            await tech.call("calibration.save", calibration=sent.model_dump(mode="json"))
            refused = None
        except ServiceError as exc:
            refused = str(exc)
        await tech.call("calibration.end")
        await tech.release()
        await tech.close()
        return honest, refused

    honest, refused = run(main())
    store = CalibrationStore(data_dir / "calibrations.sqlite", readonly=True)
    newest = store.latest(sim.serial)
    assert refused is not None and newest is not None and \
        newest.calibration_id == honest.calibration_id, (
            f"an expired calibration {newest and newest.calibration_id} was saved last, "
            f"superseding the valid {honest.calibration_id}")
    assert store.latest_valid(sim.serial) is not None
    assert "calibration.expires_at" in refused and "expired" in refused, refused  # names it
