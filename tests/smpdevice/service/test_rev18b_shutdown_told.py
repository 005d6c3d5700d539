# ruff: noqa: F811  (fixtures, imported)
"""Review 18b: docs/service.md "When smp serve stops": "The pass it stopped says so (its
`detail`, and its log line)". The close closed every connection (websockets' server.close(),
1001) before the session it stopped ended its pass, so no client ever heard that pass:
neither the driver nor a viewer, and `smp run --service` printed the pass as running, then
"went away", with no line for it. Now the close refuses new connections, brings the pen to
rest (waiting on no client), lets the session end its pass, lets the clients' queued messages
leave (bounded), then closes the connections (1001). A session the close left open has its
result told by that close (as a host crash), so `smp run --service` still exits 6."""
from __future__ import annotations

import asyncio
import signal

import pytest

from smpdevice.outcomes import ExitCode
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.cli.test_cli_service import (  # noqa: F401 - a fixture
    SERVED_PEN,
    Proc,
    env,
    save_calibration,
)
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import (  # noqa: F401 - fixtures
    InNeedleRun,
    connect,
    data_dir,
    run,
    vsim,
    while_held,
)
from tests.smpdevice.service.virtual_service import CLEAR, PROFILE


def _told(client, method: str) -> list[dict]:
    told = []
    while not client._queue.empty():
        n = client._queue.get_nowait()
        if n["method"] == method:
            told.append(n["params"])
    return told


def test_the_pass_stopped_by_the_shutdown_is_told_to_the_driver_and_viewers(vsim, data_dir):
    handle = ServiceHandle(ServiceOptions(port=vsim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, lease_ms=1000,
                                          calibration=true_calibration(vsim),
                                          lease_clock=lambda: 0.0))
    mid_pass = InNeedleRun(vsim, 1, hold=True, impressions=3)  # pass 2, running
    told: dict[str, list[dict]] = {}
    with handle:
        async def main() -> None:
            op = await connect(handle, Role.OPERATOR)
            viewer = await connect(handle, Role.VIEWER)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                          leave_open=True)
            await mid_pass.reached()
            work = handle.server.service.work
            await while_held(mid_pass, asyncio.to_thread(handle.stop),
                             lambda: work._stop.is_set(), "the service to stop its session")
            await asyncio.gather(op._reader, viewer._reader)  # every frame sent was read
            assert op.closed_reason and "1001" in op.closed_reason, op.closed_reason
            told["driver"], told["viewer"] = _told(op, "session.pass"), _told(viewer,
                                                                              "session.pass")
            await op.close()
            await viewer.close()

        run(main())
    assert vsim.firmware.state.name != "RUNNING"
    for who, passes in told.items():
        assert [p["outcome"] for p in passes] == ["completed", "stopped"], (who, passes)
        assert "shutting down" in passes[-1]["detail"], (who, passes)


# realtime: `smp run` and `smp serve` in two processes, the served pen on the wall clock, signalled
# mid-pass (as tests/smpdevice/cli/test_cli_service.py's)
@pytest.mark.realtime
def test_smp_run_through_the_service_prints_the_stopped_pass_then_exits_6(env):
    """The CLI, on a real `smp serve` (SIGTERM mid-pass): the stopped pass's line, with its
    detail, before the exit-6 message saying the service went away and how to resume."""
    save_calibration(env)
    serve = Proc("serve", *SERVED_PEN, "--listen", "127.0.0.1:0", "--no-socket", env=env)
    try:
        url = serve.wait_for("JSON-RPC:").split()[-1]
        smp_run = Proc("run", "examples/session1_base_density.yaml", "--service", url, "-t",
                       "ana", "--screening", "examples/screening_clear.yaml", env=env)
        sid = smp_run.wait_for("Session S").split()[1].rstrip(":")
        smp_run.wait_for("pass 1/4 top running")
        serve.popen.send_signal(signal.SIGTERM)
        rc, out, err = smp_run.finish()
    finally:
        serve.popen.terminate()
        serve.popen.wait(30)
    assert rc == ExitCode.LINK_LOST, (out, err)
    (line,) = [s for s in out.splitlines() if s.split()[:2] == ["pass", "1"]]
    assert "stopped" in line and "the service is shutting down" in line, out
    assert f"went away during session {sid}" in err.strip().splitlines()[-1], err
