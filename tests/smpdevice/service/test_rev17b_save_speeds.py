"""Review 17 (b17b, fixed): `calibration.save` took rate checks at any three speeds the client
chose, not the station's three. docs/service.md: "A calibration without that speed check is refused,
as the station never saves one: ... rate checks at fewer than the station's three speeds";
docs/technicians.md step 3: the station spins "at three speeds (15 %, 50 % and 85 % of the
pen's range)". A client that spins at 100, 101 and 102 Hz (one point of a 30-180 Hz pen) has
the calibration saved and installed with a "speed check" that never ran the motor low or high."""

from __future__ import annotations

import uuid

import pytest

from smpdevice.calibration.accuracy import count_window_s
from smpdevice.calibration.speed import SpeedSample, check_speed
from smpdevice.calibration.workflow import count_punctures
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


SPEEDS = {  # the three speeds a client spun at, from the pen's (min, max)
    "one-point": lambda lo, hi: [round((lo + hi) / 2) + k for k in (0, 1, 2)],
    "no-middle": lambda lo, hi: [round(lo + 0.15 * (hi - lo)), round(lo + 0.85 * (hi - lo)), hi],
    "no-low": lambda lo, hi: [lo, round((lo + hi) / 2), round(lo + 0.85 * (hi - lo))],
}


@pytest.mark.parametrize("speeds", SPEEDS.values(), ids=SPEEDS.keys())
def test_rate_checks_not_at_the_stations_three_speeds_are_refused(service, sim,  # noqa: F811
                                                                    speeds):
    async def main() -> tuple[str | None, tuple[float, float]]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        await tech.call("calibration.begin")
        honest = await measured_calibration(tech, sim)  # moves, reads, spins as a run does
        lim = (await tech.call("pen.identity"))["identity"]["limits"]
        rates, samples = [], []
        for set_hz in speeds(lim["speed_min_hz"], lim["speed_max_hz"]):
            duration_s = count_window_s(set_hz, 3.0, 0.2)
            spun = await tech.call("calibration.spin", speed_hz=set_hz, duration_s=duration_s)
            frames = [(u, s, bool(r)) for u, s, r in spun["frames"]]
            rates.append((set_hz, count_punctures(set_hz, duration_s, frames).measured_hz))
            samples.append(SpeedSample(set_hz, spun["encoder_hz"]))
        sent = Calibration.model_validate({
            **honest.model_dump(), "calibration_id": uuid.uuid4().hex[:12],
            "rate_checks": rates,
            # the worst of this run's spins, as the service sees them (the honest run's too):
            # only where the rate checks were made may differ
            "speed_error_pct": max((honest.speed_error_pct,
                                    check_speed(samples).worst_error_pct), key=abs)})
        try:
            saved = await tech.call("calibration.save", calibration=sent.model_dump(mode="json"))
            await tech.call("calibration.end", calibration_id=saved["calibration_id"])
            refused = None
        except ServiceError as exc:
            refused = str(exc)
            await tech.call("calibration.end")
        await tech.release()
        await tech.close()
        return refused, (lim["speed_min_hz"], lim["speed_max_hz"])

    refused, span = run(main())
    assert refused is not None, (f"saved with rate checks at {speeds(*span)} Hz, not the "
                                 f"station's three, on a {span[0]:g}-{span[1]:g} Hz pen")
    assert "rate_checks" in refused and "none is at" in refused, refused  # which is missing
