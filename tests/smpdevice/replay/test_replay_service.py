"""A session run by `smp serve` and stopped from a client (the console's E-stop, its stop):
the input is in the recording, and `smp replay` matches."""

from __future__ import annotations

from importlib import resources

import pytest

from firmware_protocol.codes import FirmwareState
from smpdevice.passlog import PassLog
from smpdevice.paths import pass_log_paths
from smpdevice.replay.runner import replay_session
from smpdevice.service.auth import Role
from smpdevice.sessions.screening import QUESTIONS
from tests.smpdevice.replay.test_replay_inputs import inputs_of
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    connect,
    data_dir,
    run,
    service,
    sim,
    wait_until,
)

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


def served_session(service, sim, how: str) -> dict:  # noqa: F811
    """A session through the service, stopped mid-pass by a viewer's E-stop or the
    operator's `session.stop`; returns its result."""
    async def main() -> dict:
        op = await connect(service, Role.OPERATOR)
        viewer = await connect(service, Role.VIEWER)
        await op.drive(lease_ms=1000)
        await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="t",
                      quick_pass_s=20.0)
        await wait_until(lambda: sim.firmware.state is FirmwareState.RUNNING, what="running")
        await wait_until(lambda: sim.firmware.impressions > 2, what="impressions")
        if how == "estop":
            await viewer.estop()
        else:
            await op.call("session.stop")
        result = await viewer.next_notification("session.result", timeout_s=60)
        await op.close()
        await viewer.close()
        return result

    return run(main())  # type: ignore[return-value]


def the_log(data_dir):  # noqa: F811
    (path,) = [p for p in pass_log_paths() if p.exists()]
    return PassLog(path, readonly=True)


@pytest.mark.parametrize("how", ["estop", "stop"])
def test_a_served_session_stopped_by_a_client_replays(service, sim, data_dir, how):  # noqa: F811
    result = served_session(service, sim, how)
    sid = result["session_id"]
    with the_log(data_dir) as log:
        recorded = inputs_of(log.path.parent / "recordings" / f"{sid}.mcap")
        kinds = [i["kind"] for i in recorded]
        # session.stop: the session stops its own pass (one actor on the pen), no pen_stop
        assert kinds and kinds[0] == ("estop" if how == "estop" else "stop"), recorded
        assert "pen_stop" not in kinds, recorded
        report = replay_session(log, sid)
    assert report.match, report.difference
