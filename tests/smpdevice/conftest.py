"""Shared fixtures: a real-time simulated pen and a controller connected to it over pensim://."""

from __future__ import annotations

import contextlib
import threading

import pytest
import structlog

from simulators import PenSimulator, VirtualClock
from smpdevice.calibration.speed_step import station_speeds_hz
from smpdevice.control import PenController
from smpdevice.control.calibration import Calibration
from smpdevice.records.frames import FrameWriter
from tests.smpdevice.virtual_time import TimeDriver


def true_calibration(sim: PenSimulator, technician: str = "test") -> Calibration:
    """The calibration a perfect technician would fit for this simulated pen (its speed check
    at this pen's station speeds)."""
    return Calibration.linear(
        pen_serial=sim.serial, technician=technician,
        offset_mm=-sim.model.offset_mm, gain=sim.model.gain,
        **fit_points(-sim.model.offset_mm, sim.model.gain,
                     (sim.model.speed_min_hz, sim.model.speed_max_hz)),
    )


def speed_check(speed_min_hz: float = 30.0, speed_max_hz: float = 180.0) -> dict:
    """`rate_checks` and `speed_error_pct` of a perfect station speed check of a pen with this
    speed range (at its 15, 50 and 85 % speeds): every stored calibration ran one
    (`calibration.savable`). The default range is the simulator's pen (52/105/158 Hz)."""
    speeds_hz = station_speeds_hz(speed_min_hz, speed_max_hz)
    return {"rate_checks": [(float(hz), float(hz)) for hz in speeds_hz], "speed_error_pct": 0.0}


# The station's speed check of the simulator's 30..180 Hz pen: 52, 105 and 158 Hz
STATION_SPEED_CHECK = speed_check()


def fit_points(offset_mm: float, gain: float,
               speed_range_hz: tuple[float, float] = (30.0, 180.0)) -> dict:
    """`points` and `residuals_mm` of a perfect run fitting this line: six gauge readings from
    0.25 to 1.5 mm past flush, and the station speed check of a pen with `speed_range_hz`
    (the simulator's by default: `STATION_SPEED_CHECK`). A stored calibration carries the
    points it was fitted from (review 16) and its speed check, so one made in a test to be
    saved needs them: `**fit_points(offset, gain)`."""
    flush_mm = -offset_mm / gain
    points = [(flush_mm + depth / gain, depth) for depth in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)]
    return {"points": points, "residuals_mm": [0.0] * len(points),
            **speed_check(*speed_range_hz)}


@pytest.fixture(autouse=True)
def _fresh_logging():
    """A command-line test configures structlog globally (e.g. errors only); undo it. And a
    test that leaves a session open on purpose (a simulated crash) leaves its recording's
    writer thread running, waking every 50 ms for the rest of the worker's tests: stop it."""
    before = {thread.ident for thread in threading.enumerate()}
    yield
    structlog.reset_defaults()
    _stop_frame_writers(before)


def _stop_frame_writers(before: set[int | None]) -> None:
    """Seal the recordings whose writer thread this test started and left running (what the
    test checked is done; the file is the test's own)."""
    for thread in threading.enumerate():
        if thread.name != "smp-frame-writer" or thread.ident in before:
            continue
        writer = getattr(getattr(thread, "_target", None), "__self__", None)
        if isinstance(writer, FrameWriter):
            with contextlib.suppress(Exception):
                writer.seal()


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
