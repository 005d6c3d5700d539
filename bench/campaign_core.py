"""What the fault-campaign scenarios share: the result record, small helpers, the pen's own
record of a stop (`PenStops`, `pen_time_at`) and the ways to starve a simulator or a host."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_protocol.codes import FirmwareState


@dataclass
class Result:
    """One scenario's outcome: figures in print order, and every failure found."""

    name: str
    count: int
    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, text: str) -> None:
        if len(self.failures) < 50:
            self.failures.append(text)

    def summary(self) -> str:
        return "; ".join(f"{k} {fmt(v)}" for k, v in self.figures.items())


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.001) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(step_s)
    return True


def sim_calibration(sim):
    from smpdevice.control.calibration import Calibration

    return Calibration.linear(pen_serial=sim.serial, technician="campaign",
                              offset_mm=-sim.model.offset_mm, gain=sim.model.gain)


SCREENING_CLEAR = dict(open_sores=False, eczema=False, dermatitis=False, psoriasis_flare=False,
                       infection=False, sunburn=False, keloid_tendency=False)
HOST_WAIT_S = 30.0  # a generous wait for a report or a stop: a condition, never a timing
TICK_EPS_S = 1e-6  # pen times are whole 1 ms ticks; this absorbs only the float subtraction


class PenStops:
    """The pen's clock time of each needle stop (the firmware tick that left RUNNING), recorded
    by the firmware's own calls, whichever thread makes them and however late."""

    def __init__(self, fw) -> None:
        self.fw = fw
        self.stop_s: float | None = None
        self.granted_s: float | None = None  # when the pen last took a lease (a renewal)
        self.granted_at_stop_s: float | None = None

        def wrap(call):
            def wrapped(*args, **kwargs):
                was, lease_before = fw.state is FirmwareState.RUNNING, fw.lease_until_ms
                out = call(*args, **kwargs)
                if fw.lease_until_ms is not None and fw.lease_until_ms != lease_before:
                    self.granted_s = fw.time_s()
                if was and fw.state is not FirmwareState.RUNNING and self.stop_s is None:
                    self.stop_s, self.granted_at_stop_s = fw.time_s(), self.granted_s
                return out
            return wrapped

        fw.step = wrap(fw.step)
        fw.receive_now = wrap(fw.receive_now)

    def rearm(self) -> None:
        self.stop_s = self.granted_at_stop_s = None


def pen_time_at(sim, action) -> float:
    """Run `action()` under the simulator's lock and return the pen's clock time at that
    instant: its tick thread and every port wait meanwhile, so the figure is exact."""
    with sim._cond:  # the one lock the simulator runs under
        sim.sync()
        action()
        return sim.firmware.time_s()


def starve_host(pen, seconds: float) -> None:
    """Hold the controller's loop (its timers, its requests) for `seconds` of wall time, from
    now: queued work waits behind it, as behind a thread the machine does not run."""
    if seconds > 0 and pen._engine is not None:
        pen._engine.post(time.sleep, seconds)


def starve(sim, seconds: float, pen=None) -> None:
    """Hold the simulator (its tick, its ports, its bridges) and, given a controller, its loop,
    for `seconds` of wall time: what a machine at load 13 does to a thread now and then."""
    if seconds <= 0:
        return
    if pen is not None:
        starve_host(pen, seconds)
    with sim._cond:
        time.sleep(seconds)
