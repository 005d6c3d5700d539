"""A pass stopped because `smp serve` is shutting down (SIGTERM, Ctrl-C to the service while a
client's pass runs) names that cause in its detail, as the local paths name theirs (Ctrl-C,
the pedal, a lost driver), never "stop requested", which reads as the technician's ask.
A real service on a simulated pen on virtual time, stopped while the pen's time is held
mid-pass (as test_rev15_serve_stop_console_session)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from structlog.testing import capture_logs

from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration
from tests.smpdevice.service.conftest import InNeedleRun, connect, run, while_held
from tests.smpdevice.service.virtual_service import CLEAR, PROFILE


@contextmanager
def info_captured() -> Iterator[list]:
    """The log's info lines (the "pass" line carries its detail), whatever level is set."""
    old = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**old)


def test_a_pass_stopped_by_the_service_shutting_down_names_it(vsim, data_dir):
    sim = vsim
    handle = ServiceHandle(ServiceOptions(port=sim.url, listen="127.0.0.1:0",
                                          data_dir=data_dir, lease_ms=1000,
                                          calibration=true_calibration(sim),
                                          lease_clock=lambda: 0.0))
    mid_pass = InNeedleRun(sim, 1, hold=True, impressions=3)  # pass 2, running
    with info_captured() as logs, handle:

        async def main() -> None:
            op = await connect(handle, Role.OPERATOR)
            await op.drive(lease_ms=1000)
            await op.call("session.run", profile=PROFILE, screening=CLEAR, technician="ana",
                          leave_open=True)
            await mid_pass.reached()
            work = handle.server.service.work
            await while_held(mid_pass, asyncio.to_thread(handle.stop),
                             lambda: work._stop.is_set(), "the service to stop its session")
            await op.close()

        run(main())
    passes = [e for e in logs if e.get("event") == "pass"]
    assert [e["outcome"] for e in passes] == ["completed", "stopped"], passes
    detail = passes[-1]["detail"]
    assert "service" in detail and "shutting down" in detail, detail
    assert "stop requested" not in detail, detail
