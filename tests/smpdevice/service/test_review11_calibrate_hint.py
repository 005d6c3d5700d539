"""A session refused by the service because its pen has no valid calibration tells the client
to calibrate it through the service, at the URL that client reached it at (`smp calibrate
--service URL`), never by the service's own pen port (which, for `pensim://`, is a fresh
simulated pen: calibrating that would change nothing). The not-idle hint was fixed the same
way (test_review11_fixc2_clear_hint.py). A real service, a virtual-time pen, real sockets."""

from __future__ import annotations

from importlib import resources

import pytest

from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from smpdevice.sessions.screening import QUESTIONS

from .conftest import PEN_LEASE_MS, connect, run

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


@pytest.mark.parametrize("unix", [False, True])
def test_an_uncalibrated_pen_is_calibrated_through_the_service_that_refused(vsim, data_dir,
                                                                            unix):
    options = ServiceOptions(port=vsim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, lease_clock=lambda: 0.0)  # no calibration
    with ServiceHandle(options) as service:
        async def main() -> ServiceError:
            op = await connect(service, Role.OPERATOR, unix=unix)
            await op.drive(lease_ms=1000)
            with pytest.raises(ServiceError) as refused:
                await op.call("session.run", profile=PROFILE, screening=CLEAR,
                              technician="ana")
            await op.close()
            return refused.value

        error = run(main())
        url = f"unix://{service.socket_path}" if unix else service.url
    assert (error.data or {}).get("type") == "CalibrationError", error
    assert f"smp calibrate --service {url}" in str(error), error
    assert "--port" not in str(error), error
