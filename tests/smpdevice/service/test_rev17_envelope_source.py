"""A session refused by the station's envelope through the service names the envelope file,
as the local `smp run` does ("(envelope PATH)"), not only the zone: the controller's frozen
copy of the envelope keeps the file it was read from (control/zones.py)."""

from __future__ import annotations

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS, connect, run
from .test_review11_reclaim_mid_session import CLEAR, PROFILE


def test_an_envelope_refusal_through_the_service_names_the_envelope_file(sim, data_dir,
                                                                         tmp_path):
    narrow = tmp_path / "station-env.yaml"
    narrow.write_text("top:\n  dermal_ceiling_mm: 0.30\n")  # the profile's top asks 0.40
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             envelope=str(narrow))
    with ServiceHandle(options) as handle:

        async def main() -> str:
            op = await connect(handle, Role.OPERATOR)
            try:
                await op.drive(lease_ms=1000)
                with pytest.raises(ServiceError) as refused:
                    await op.call("session.run", profile=PROFILE, screening=CLEAR,
                                  technician="ana")
            finally:
                await op.close()
            return str(refused.value)

        message = run(main())
    assert "zones.top.depth_mm" in message and "zone 'top'" in message, message
    assert f"(envelope {narrow})" in message, message
