"""Review 11, F7: a log line that cannot be written never costs a safety stop.

With stderr unwritable (`2>/dev/full`, `2>&1 | head -1`) every log call used to raise OSError:
the pass-time limit logged its warning before queueing the stop, and the controller's loop
answered the error by logging it again, which ended the loop thread. The controller then said
`running` for ever and only the pen's lease stopped the needle.

Here an integrator's own structlog set-up writes to a stream that fails like a full disk (the
library's own set-up, smpdevice.logs, drops a failed line itself: tests/smpdevice/
test_review11_ctlfix_logs.py), so the controller's code must still act first and its loop must
survive its own log line.
"""

from __future__ import annotations

import errno
import io
import logging

import pytest
import structlog

from firmware_protocol.codes import Fault, FirmwareState
from smpdevice.control import PenController, State
from smpdevice.envelope import DEFAULT_ZONES
from tests.smpdevice.conftest import run_needle, true_calibration

pytestmark = pytest.mark.virtual_time  # every wait below is on the simulator's clock

GENEROUS_S = 5.0  # waits are on conditions; this only bounds a broken run


class FullDisk(io.StringIO):
    """A stderr whose every write fails as `2>/dev/full` does."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0

    def write(self, text: str) -> int:
        self.failed += 1
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def unwritable_log():
    """structlog configured by the program (not by smpdevice) to print to a full disk."""
    stream = FullDisk()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.KeyValueRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    yield stream
    structlog.reset_defaults()


def test_the_pass_time_limit_stops_the_needle_when_its_log_line_fails(sim, unwritable_log):
    quick = {"crown": DEFAULT_ZONES["crown"].model_copy(update={"max_pass_s": 0.2})}
    with PenController.connect(sim.url, clock=sim.clock, calibration=true_calibration(sim),
                               zones=quick, lease_ms=200) as pen:
        run_needle(pen)
        pen.wait_for_state(State.ARMED, State.FAULT, State.DISCONNECTED, timeout_s=GENEROUS_S)
        # the controller's own stop (the pen left armed), not the pen's lease (a fault)
        assert pen.state is State.ARMED and pen.last_fault is None, pen.last_fault
        assert FirmwareState(sim.firmware.state) is FirmwareState.ARMED
        assert not Fault(sim.firmware.faults) & Fault.LEASE_EXPIRED
        assert unwritable_log.failed >= 1  # the warning was tried, and failed
        # the loop lives on: the next pass is started, renewed and stopped as usual
        pen.start_needle()
        pen.stop_needle()
        assert pen.state is State.ARMED

