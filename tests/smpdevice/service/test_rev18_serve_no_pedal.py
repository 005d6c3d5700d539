"""`smp serve` with the station's `footswitch = "required"` on a pen without a footswitch: the
service starts (it was refused at start, so nobody could read the pen, clear its faults or
latch an E-stop through it, as `smp info`/`smp clear`/`smp estop` do at the pen's port), and
refuses what would run the needle (arming, a session, a resume, a calibration) with the one
line `smp run` gives for that pen at its port. Real simulator over real bytes."""

from __future__ import annotations

import pytest

from firmware_protocol.codes import FirmwareState
from simulators import PenSimulator
from simulators.pen_model import PenModel
from smpdevice.control import PenController
from smpdevice.control.footswitch import FootswitchError
from smpdevice.service.auth import Role
from smpdevice.service.client_wire import ServiceError
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import PEN_LEASE_MS, connect, run
from tests.smpdevice.service.virtual_service import CLEAR, PROFILE


def local_reason(sim: PenSimulator) -> str:
    """What `smp run` says at the pen's port: the controller's own refusal."""
    with pytest.raises(FootswitchError) as refused:
        PenController.connect(sim.url, footswitch="required")
    return str(refused.value)


def test_a_pen_without_a_pedal_is_served_read_cleared_and_never_run(data_dir):
    with PenSimulator(model=PenModel(seed=5, footswitch_fitted=False)) as sim:
        reason = local_reason(sim)
        assert "no footswitch" in reason and "\n" not in reason
        options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                                 lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                                 footswitch="required", lease_clock=lambda: 0.0)
        with ServiceHandle(options) as handle:

            async def main() -> tuple[dict, list[tuple[str, str]], dict]:
                op = await connect(handle, Role.TECHNICIAN)  # calibrates and clears too
                identity = await op.call("pen.identity")
                await op.drive(lease_ms=1000)
                refused = []
                for method, params in (
                        ("pen.arm", {}),
                        ("session.run", {"profile": PROFILE, "screening": CLEAR,
                                         "technician": "t"}),
                        ("calibration.begin", {}),
                        ("calibration.auto", {"technician": "t"})):
                    with pytest.raises(ServiceError) as error:
                        await op.call(method, **params)
                    refused.append((method, str(error.value)))
                await op.call("pen.estop")
                latched = sim.firmware.state
                await op.call("pen.clear_faults", reason="test: E-stop checked, area clear")
                state = await op.call("pen.state")
                listed = await op.call("sessions.list")
                await op.release()
                await op.close()
                return identity, [*refused, ("estop", latched.name)], {**state, **listed}

            identity, refused, after = run(main())
        assert identity["identity"]["serial"] == sim.serial
        for method, message in refused[:-1]:
            assert message == f"{method}: {reason}", (method, message)
        assert refused[-1] == ("estop", FirmwareState.ESTOP.name)
        assert sim.firmware.state is FirmwareState.IDLE, sim.firmware.state
        assert after["sessions"] == [], after  # nothing opened, nothing recorded
