"""Review 15 (service, V5): `smp serve` (or `smp demo --web`) stopped while a session started from
the web console plays. docs/service.md ("Resuming through the service"): "When `smp serve`
stops (Ctrl-C, SIGTERM, SIGHUP, an update) while a session runs, the session stops its needle,
records its pass and is left open too; only a session whose every pass completed is closed
(`smp demo --web` does the same on SIGTERM or Ctrl-C)"; the console itself says after such a
restart "the service stopped while it ran; the session is left open in the pass log"
(runner.js, reconcileRunner). The console never sends `leave_open`, and such a session is
closed `incomplete` instead: it can no longer be resumed. A real service on a simulated pen
on virtual time, stopped while the pen's time is held mid-pass."""

from __future__ import annotations

import asyncio

from smpdevice.passlog import PassLog
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401 (fixtures)
    InNeedleRun,
    connect,
    data_dir,
    run,
    vsim,
    while_held,
)
from tests.smpdevice.service.virtual_service import CLEAR, PROFILE


def test_a_console_session_is_left_open_when_the_service_stops_mid_pass(vsim, data_dir):  # noqa: F811
    sim = vsim
    handle = ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, lease_ms=1000,
                                          calibration=true_calibration(sim),
                                          lease_clock=lambda: 0.0))
    mid_pass = InNeedleRun(sim, 1, hold=True, impressions=3)  # pass 2, running
    with handle:
        path = handle.server.service.passlog_path

        async def main() -> None:
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            # what the console's Start sends (runner.js): no leave_open
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana")
            await mid_pass.reached()
            work = handle.server.service.work
            await while_held(mid_pass, asyncio.to_thread(handle.stop),
                             lambda: work._stop.is_set(), "the service to stop its session")
            await op.close()

        run(main())
    with PassLog(path, readonly=True) as log:
        (session,) = log.sessions()
        outcomes = [p.outcome for p in log.passes(session.session_id)]
    assert outcomes == ["completed", "stopped"], outcomes
    assert session.closed_at is None, (
        f"closed as {(session.summary or {}).get('outcome')} when the service stopped: "
        "not left open to be resumed")
