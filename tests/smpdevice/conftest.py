"""Shared fixtures: a real-time simulated pen and a controller connected to it over pensim://."""

from __future__ import annotations

import pytest
import structlog

from simulators import PenSimulator
from smpdevice.calibration import Calibration
from smpdevice.controller import PenController


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


@pytest.fixture
def sim():
    with PenSimulator(seed=7) as s:
        yield s


@pytest.fixture
def pen(sim):
    """A connected controller with a valid calibration and a short lease (fast lease tests)."""
    ctl = PenController.connect(sim.url, calibration=true_calibration(sim), lease_ms=200)
    yield ctl
    ctl.close()


CROWN = dict(depth_mm=0.5, speed_hz=100.0, duty_pct=40.0, period_ms=100.0)


def run_needle(pen: PenController, zone: str = "crown", **setpoints) -> None:
    pen.set_zone(zone)
    pen.set_setpoints(**(setpoints or CROWN))
    pen.arm()
    pen.start_needle()
