"""Shared fixtures: a real-time simulated pen and a controller connected to it over pensim://."""

from __future__ import annotations

import logging

import pytest
import structlog

from simulators import PenSimulator, VirtualClock
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration
from tests.smpdevice.virtual_time import TimeDriver


def true_calibration(sim: PenSimulator, technician: str = "test") -> Calibration:
    """The calibration a perfect technician would fit for this simulated pen."""
    return Calibration.linear(
        pen_serial=sim.serial, technician=technician,
        offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
    )


@pytest.fixture(autouse=True)
def _fresh_logging():
    """A command-line test configures structlog globally (e.g. errors only); undo it."""
    yield
    structlog.reset_defaults()
    _forget_detail_loggers()


def _forget_detail_loggers() -> None:
    """Unregister the loggers of the detail logs this test's commands opened. Each `smp`
    command run in this process leaves one (`smpdevice.detail.<id>`, not propagating), and
    pytest's log capture adds and removes its handlers on every such logger in each phase of
    every later test: about 0.7 ms a test per 100 of them, 200 after a serial pass 1. A detail
    log keeps its own logger object, so one still written to goes on working."""
    loggers = logging.root.manager.loggerDict
    with logging._lock:  # type: ignore[attr-defined]  # the lock getLogger takes
        parent = loggers.get("smpdevice.detail")
        for name in [n for n in loggers if n.startswith("smpdevice.detail.")]:
            logger = loggers.pop(name)
            if isinstance(parent, logging.PlaceHolder):
                parent.loggerMap.pop(logger, None)  # type: ignore[call-overload]


def on_virtual_time(request: pytest.FixtureRequest) -> bool:
    """Tests in a module marked `virtual_time` run on the simulator's virtual clock, unless
    marked `realtime` themselves."""
    node = request.node
    return (node.get_closest_marker("virtual_time") is not None
            and node.get_closest_marker("realtime") is None)


@pytest.fixture
def sim(request):
    """A simulated pen: real time, or virtual time with a driver (`sim.time`) in modules
    marked `virtual_time`. Connect to it with `clock=sim.clock`."""
    if not on_virtual_time(request):
        with PenSimulator(seed=7) as s:
            s.time = None
            yield s
        return
    clock = VirtualClock()
    with PenSimulator(seed=7, clock=clock) as s, TimeDriver(clock) as driver:
        s.advance(0.06)  # booted
        s.time = driver
        yield s


@pytest.fixture
def pen(sim):
    """A connected controller with a valid calibration and a short lease (fast lease tests)."""
    ctl = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200,
                                clock=sim.clock)
    yield ctl
    ctl.close()


CROWN = dict(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)


def run_needle(pen: PenController, zone: str = "crown", **setpoints) -> None:
    pen.set_zone(zone)
    pen.set_setpoints(**(setpoints or CROWN))
    pen.arm()
    pen.start_needle()
