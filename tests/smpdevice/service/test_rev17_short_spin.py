"""A speed check too short to count punctures at the served pen's telemetry rate is refused
as early through the service as at the station, naming the least that works
(calibration/report.py `least_spin_s`, 0.7 s at 10 Hz):
- a guided `smp calibrate --service` refuses before step 1, not at step 3 after every gauge
  reading was made (the client learns the service's rate from `pen.identity`);
- the service's own `calibration.spin` refuses below that least, before the needle runs,
  not only below two telemetry frames (0.2 s at 10 Hz)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from firmware_protocol.codes import MsgType
from smpdevice.control import State
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS, connect, run
from .test_service_calibrate import LiveInput, smp

TELEMETRY_HZ = 10  # counting punctures needs 0.7 s of spin at this rate


@pytest.fixture
def slow_service(vsim, data_dir) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=vsim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(vsim),
                             telemetry_hz=TELEMETRY_HZ)
    with ServiceHandle(options) as handle:
        yield handle


def test_a_guided_calibration_refuses_a_short_spin_before_any_gauge_reading(slow_service,
                                                                            vsim):
    readings = [0]

    def gauge() -> str:
        readings[0] += 1
        return f"{vsim.gauge.read_mm():.3f}"

    result = smp(["calibrate", "--service", slow_service.url, "-t", "ana",
                  "--spin-seconds", "0.3"], LiveInput([gauge] * 40))
    out = result.output
    assert result.exit_code != 0, out
    assert "too short for the pen's telemetry at 10 Hz" in out and "at least 0.7 s" in out, out
    assert readings[0] == 0 and "Step 1, zero" not in out, out  # refused before anything
    assert vsim.firmware.executed[MsgType.NEEDLE_START] == 0
    assert slow_service.pen.state is State.IDLE


def test_the_services_spin_refuses_what_cannot_be_counted(slow_service, vsim):
    async def main() -> str:
        tech = await connect(slow_service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        try:
            await tech.call("calibration.begin")
            with pytest.raises(ServiceError) as refused:
                await tech.call("calibration.spin", speed_hz=90, duration_s=0.3)
            await tech.call("calibration.end")
        finally:
            await tech.close()
        return str(refused.value)

    message = run(main())
    assert "at least 0.7 s" in message and "10 Hz" in message, message
    assert vsim.firmware.executed[MsgType.NEEDLE_START] == 0
