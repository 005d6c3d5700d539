"""Review 17 (tech): through the service, a calibration without this run's speed check is
never saved nor installed. docs/service.md: a guided `smp calibrate --service` runs "the same
prompts and checks (zero, depth points, speed, verify)"; docs/technicians.md: every report
gives depth and puncture rate accuracy, "Only a run that passes every check is saved".
`calibration.save` took a calibration with no rate checks and no speed error ("a run without
the speed check, as the station allows"), and `calibration.end` installed it on the pen."""

from __future__ import annotations

import uuid

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


CUTS = {  # what a client leaves out of an honest run's calibration
    "no-speed-check": {"rate_checks": [], "speed_error_pct": None},
    "no-rates": {"rate_checks": []},
    "no-speed-error": {"speed_error_pct": None},
    "one-speed": "first rate check only",
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_a_calibration_without_the_speed_check_is_not_saved(service, sim, cut):  # noqa: F811
    async def main() -> tuple[Calibration, Calibration | None, ServiceError | None]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        await tech.call("calibration.begin")
        honest = await measured_calibration(tech, sim)  # moves, reads, spins as a run does
        change = CUTS[cut]
        if not isinstance(change, dict):
            change = {"rate_checks": honest.rate_checks[:1]}
        sent = Calibration.model_validate({**honest.model_dump(), **change,
                                           "calibration_id": uuid.uuid4().hex[:12]})
        try:
            saved = await tech.call("calibration.save", calibration=sent.model_dump(mode="json"))
            await tech.call("calibration.end", calibration_id=saved["calibration_id"])
            refused = None
        except ServiceError as exc:
            refused = exc
            # the same run's honest calibration is still taken: only the cut one is refused
            saved = await tech.call("calibration.save",
                                    calibration=honest.model_dump(mode="json"))
            await tech.call("calibration.end", calibration_id=saved["calibration_id"])
        await tech.release()
        await tech.close()
        return sent, honest, refused

    sent, honest, refused = run(main())
    assert refused is not None, "saved without the station's speed check"
    assert "calibration." in str(refused) and "speed" in str(refused), refused
    stored = CalibrationStore(readonly=True).list(sim.serial)
    assert sent.calibration_id not in {c.calibration_id for c in stored}
    assert service.pen.calibration.calibration_id == honest.calibration_id
