"""`calibration.auto` takes `smp calibrate`'s settings, and `smp calibrate --service URL --auto`
passes its options on: before, the service ran every automatic calibration with the defaults,
whatever --points, --tolerance-mm, --speed-tolerance-pct, --valid-days or --spin-seconds said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError

from .conftest import connect, run

SHORT = {"depth_points": 3, "spin_seconds": 0.1}  # also the quickest run the ranges allow


@pytest.fixture
def sim(vsim):
    """The pen on virtual time (its clock driven by the service's controller): moves, spins
    and gauge readings follow the pen's own time, as fast as the computer computes them; the
    clients' leases stay on wall time, as ever."""
    return vsim


def test_the_settings_given_are_the_settings_used(service):
    async def main() -> dict:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        answer = await tech.call("calibration.auto", technician="ana", valid_days=2.5,
                                 tolerance_mm=0.05, **SHORT)
        await tech.close()
        return answer

    before = datetime.now(UTC)
    answer = run(main())
    assert answer["passed"] is True, answer["report"]
    cal = service.pen.calibration
    assert cal is not None and cal.calibration_id == answer["calibration_id"]
    assert len(cal.points) == 3
    assert timedelta(days=2.5) <= cal.expires_at - before <= timedelta(days=2.5, minutes=5)


@pytest.mark.parametrize(("name", "value"), [("depth_points", 9), ("depth_points", 2),
                                             ("depth_points", 4.5), ("spin_seconds", 0.01),
                                             ("valid_days", 366), ("tolerance_mm", 0),
                                             ("speed_tolerance_pct", 51), ("speed_hz", 100)])
def test_a_setting_out_of_range_or_unknown_is_refused_naming_it(service, name, value):
    async def main() -> ServiceError:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        with pytest.raises(ServiceError) as refused:
            await tech.call("calibration.auto", technician="ana", **{name: value})
        await tech.close()
        return refused.value

    error = run(main())
    assert error.code == -32602 and name in str(error)
    assert service.pen.calibration is None or service.pen.calibration.technician != "ana"


def test_smp_calibrate_through_the_service_passes_its_options_on(service):
    from smpdevice.cli import main

    # 0.5 s spins: at 0.1 s the 158 Hz count ran 0.264 s, 25 % over what +/-3 % needs, and at
    # load ~10 it came out 0.20 s (32 punctures, +/-3.2 %): the run rightly refused to vouch.
    result = CliRunner().invoke(main, [
        "calibrate", "--service", service.url, "--auto", "-t", "ana", "--points", "4",
        "--spin-seconds", "0.5", "--valid-days", "3"])
    assert result.exit_code == 0, result.output
    assert "Saved calibration" in result.output
    cal = service.pen.calibration
    assert cal is not None and len(cal.points) == 4
    assert cal.expires_at - cal.created_at == timedelta(days=3)
