"""`calibration.auto` ends when its driving client is lost, as any driven work does (the
service's dead-man rule; closing-7 leftover from session 6). Before, the run went on (or failed
on a step the dead-man's stop cut short) with nobody watching. Now: the spin stops, no move and
no start come after the loss, the answer (if anyone is left to read it) is a report saying the
driver was lost, and nothing is saved or installed.

A real service and simulated pen on the pen's virtual clock (host-driven). The clients' driver
lease runs on a clock of the test's own: its lapse is made, at a chosen moment, by moving that
clock, never by waiting on wall time. The moment is chosen in the pen's reader thread (the
first report of a spinning needle, or of the second move), so the loss lands mid-step.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest

from firmware_protocol.codes import FirmwareState, MsgType
from simulators import PenSimulator, VirtualClock
from smpdevice.calibration.store import CalibrationStore
from smpdevice.control import State
from smpdevice.control.pen import PenTelemetry
from smpdevice.service.auth import Role
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import true_calibration

from .conftest import PEN_LEASE_MS, WAIT_S, connect, pen_time_passes, run, wait_until


@pytest.fixture
def sim() -> Iterator[PenSimulator]:
    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as s:
        yield s


class LeaseClock:
    """The clients' lease clock: stands still until `lapse()` moves it past every lease."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    def lapse(self) -> None:
        self.now_s += 1e6


@pytest.fixture
def lease_clock() -> LeaseClock:
    return LeaseClock()


@pytest.fixture
def service(sim, data_dir, lease_clock) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=lease_clock)
    with ServiceHandle(options) as handle:
        yield handle


class Watch:
    """What the pen does after the loss: the commands it carried out (its own counters) and
    its reports, read in the host's reader thread."""

    def __init__(self, service: ServiceHandle, sim: PenSimulator) -> None:
        self.sim = sim
        self.frames: list[PenTelemetry] = []
        self.at: dict[MsgType, int] | None = None  # the pen's counts when the loss came
        self.at_ms: int | None = None
        self.lost = threading.Event()
        service.pen.add_inline_telemetry_reader(self.frames.append)

    def executed(self) -> dict[MsgType, int]:
        done = self.sim.firmware.executed
        return {k: done[k] for k in (MsgType.NEEDLE_START, MsgType.SET_SETPOINTS)}

    def loss(self, uptime_ms: int | None) -> None:
        if not self.lost.is_set():
            self.at = self.executed()
            self.at_ms = self.sim.firmware.now_ms if uptime_ms is None else uptime_ms
            self.lost.set()

    def needle_after_ms(self, margin_ms: int = 100) -> list[int]:
        assert self.at_ms is not None
        return [t.uptime_ms for t in list(self.frames)
                if t.needle_running and t.uptime_ms > self.at_ms + margin_ms]


def _on_first_spin(service: ServiceHandle, watch: Watch, act: Callable[[], None]) -> None:
    """`act()` (the loss) on the first report of a spinning needle in calibrating."""
    pen = service.pen

    def reader(t: PenTelemetry) -> None:
        if t.needle_running and pen.state is State.CALIBRATING and not watch.lost.is_set():
            watch.loss(t.uptime_ms)
            act()

    pen.add_inline_telemetry_reader(reader)


def _on_depth_point(sim: PenSimulator, watch: Watch, n: int, act: Callable[[], None]) -> None:
    """`act()` while the gauge is read for the n-th time (no move in flight then)."""
    read, reads = sim.gauge.read_mm, [0]

    def counted() -> float:
        reads[0] += 1
        if reads[0] == n:
            watch.loss(None)
            act()
        return read()

    sim.gauge.read_mm = counted  # type: ignore[method-assign]


async def _later_virtual_s(sim: PenSimulator, seconds: float) -> None:
    """Let `seconds` of the pen's (virtual) time pass, the host running meanwhile (waiting on
    the pen's clock: at the pace the computer keeps, not the wall's)."""
    await pen_time_passes(sim, seconds)


async def _pen_is_free(service: ServiceHandle) -> None:
    """The run has ended: another client drives and calibrates at once."""
    other = await connect(service, Role.TECHNICIAN, name="next")
    await other.drive(lease_ms=1000)
    await other.call("calibration.begin")
    await other.call("calibration.end")
    await other.release()
    await other.close()


def _assert_ended(service, sim, watch: Watch, before_id: str, data_dir) -> None:
    assert watch.at is not None
    assert watch.executed() == watch.at, "a move or a start reached the pen after the loss"
    assert not watch.needle_after_ms(), "the needle ran on after the driver was lost"
    assert service.pen.state is State.IDLE and sim.firmware.state is FirmwareState.IDLE
    cal = service.pen.calibration
    assert cal is not None and cal.calibration_id == before_id  # nothing installed
    assert not (data_dir / "calibrations.sqlite").exists() or \
        CalibrationStore(readonly=True).latest(sim.serial) is None  # nothing saved


@pytest.mark.parametrize("when", ["spinning", "depth point 3"])
def test_a_lapsed_driver_lease_ends_the_auto_calibration_with_a_report(
        service, sim, data_dir, lease_clock, when):
    watch = Watch(service, sim)
    before_id = service.pen.calibration.calibration_id
    if when == "spinning":
        _on_first_spin(service, watch, lease_clock.lapse)
    else:
        _on_depth_point(sim, watch, 3 + 2, lease_clock.lapse)  # after the zero search's

    async def main() -> dict:
        tech = await connect(service, Role.TECHNICIAN, name="ana")
        await tech.drive(lease_ms=1000)
        answer = await tech.call("calibration.auto", technician="ana", timeout_s=WAIT_S)
        await _later_virtual_s(sim, 2.0)  # a 1 s spin per speed would have gone on
        await tech.close()
        await _pen_is_free(service)
        return answer

    answer = run(main())
    report = answer["report"]
    assert watch.lost.is_set(), "the loss never came: the test did not reach its moment"
    assert answer["passed"] is False and answer["calibration_id"] is None, report
    assert "the driving client" in report and "was lost" in report, report
    assert "Result: FAIL; nothing was saved" in report
    _assert_ended(service, sim, watch, before_id, data_dir)


def test_a_driver_that_disconnects_mid_spin_ends_the_auto_calibration(service, sim, data_dir):
    watch = Watch(service, sim)
    before_id = service.pen.calibration.calibration_id
    spinning = Watch(service, sim)
    _on_first_spin(service, spinning, lambda: None)
    lease = service.server.service.lease

    def loss_seen(t: PenTelemetry) -> None:  # the service knows: its driver lease is empty
        if spinning.lost.is_set() and lease.holder() is None:
            watch.loss(t.uptime_ms)

    service.pen.add_inline_telemetry_reader(loss_seen)

    async def main() -> None:
        tech = await connect(service, Role.TECHNICIAN, name="ana")
        await tech.drive(lease_ms=1000)
        auto = asyncio.ensure_future(tech.call("calibration.auto", technician="ana",
                                               timeout_s=WAIT_S))
        await wait_until(lambda: spinning.lost.is_set() or auto.done(), what="the spin")
        assert not auto.done()
        await tech.close()  # the connection is gone: nobody reads the answer
        with pytest.raises(Exception):  # noqa: B017 - the call ends with its connection
            await auto
        await wait_until(lambda: watch.lost.is_set(), what="the loss seen by the service")
        await wait_until(lambda: service.pen.state is State.IDLE, what="the run ended")
        await _later_virtual_s(sim, 2.0)
        await _pen_is_free(service)

    run(main())
    _assert_ended(service, sim, watch, before_id, data_dir)
