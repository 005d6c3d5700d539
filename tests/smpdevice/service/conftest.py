"""A real simulated pen behind a real service on loopback (port 0) and a private data dir."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

import pytest

from simulators import PenSimulator
from smpdevice.control.calibration import Calibration
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceClient
from smpdevice.service.runner import ServiceHandle, ServiceOptions
from tests.smpdevice.conftest import CROWN, true_calibration

WAIT_S = 30.0  # generous: 2 loaded cores; waits end on conditions, never on time


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    path = tmp_path / "data"
    monkeypatch.setenv("SMP_DATA_DIR", str(path))
    return path


@pytest.fixture
def sim() -> Iterator[PenSimulator]:
    """The service's pen, on a clock the service's controller drives (as `vsim`): it goes at
    the wall's pace while nobody in the service waits on it, and never runs ahead of a host
    that a loaded machine leaves unscheduled (docs/simulator.md, "Virtual time"). On the wall
    clock, beside four workers and two busy loops, a starved in-process pen can miss a
    request's four tries or outlive its lease: the kind of failure the console's services had
    (tests/conftest.py, REALTIME_FILES)."""
    from simulators.clock import VirtualClock

    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as s:
        yield s


# The pen's own lease. These tests ran on wall time beside others (four workers on two loaded
# cores): at 300 ms a starved in-process pen latched LEASE_EXPIRED mid-calibration (the fail-safe
# working, the test failing). The tests that let it lapse wait for that on a condition.
PEN_LEASE_MS = 1000


@contextlib.contextmanager
def service_with_held_leases(sim, data_dir) -> Iterator[ServiceHandle]:
    """A service whose clients' leases never lapse (their clock stands still): for tests in
    which a pen lost or kept must never be the lease's doing on loaded cores."""
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim),
                             lease_clock=lambda: 0.0)
    with ServiceHandle(options) as handle:
        yield handle


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=PEN_LEASE_MS, calibration=true_calibration(sim))
    with ServiceHandle(options) as handle:
        yield handle


async def connect(service: ServiceHandle, role: Role = Role.OPERATOR,
                  unix: bool = False, name: str = "python") -> ServiceClient:
    url = f"unix://{service.socket_path}" if unix else service.url
    return await ServiceClient.connect(url, token=service.token(role), role=role, name=name)


async def drive_needle(client: ServiceClient, lease_ms: int = 600) -> None:
    await client.drive(lease_ms=lease_ms)
    await client.call("pen.set_zone", zone="crown")
    await client.call("pen.set_setpoints", **CROWN)
    await client.call("pen.arm")
    await client.call("pen.start")


async def wait_until(predicate, timeout_s: float = WAIT_S, what: str = "condition") -> None:
    """Poll a cheap predicate on the event loop (the pen's state lives in other threads)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def run(coro) -> object:
    return asyncio.run(asyncio.wait_for(coro, WAIT_S * 2))


async def measured_calibration(tech: ServiceClient, sim: PenSimulator,
                               technician: str = "t") -> Calibration:
    """What an honest guided client sends after a run in calibrating: the station's fit of
    gauge readings at positions the service moved the pen to, depth checks through that fit,
    and the punctures counted from the service's own spins (what `smp calibrate` sends)."""
    from smpdevice.calibration.accuracy import count_window_s
    from smpdevice.calibration.fit import fit_linear
    from smpdevice.calibration.report import MANUAL_CHECK_DEPTHS_MM
    from smpdevice.calibration.speed import SpeedSample, check_speed
    from smpdevice.calibration.workflow import count_punctures

    lim = (await tech.call("pen.identity"))["identity"]["limits"]
    lo_mm = max(lim["depth_min_mm"], sim.model.offset_mm / sim.model.gain + 0.2)
    step_mm = (lim["depth_max_mm"] - lo_mm) / 5
    points = []
    for i in range(6):
        at = (await tech.call("calibration.move", actuator_mm=round(lo_mm + i * step_mm, 3))
              )["actuator_mm"]
        points.append((at, (await tech.call("calibration.read_gauge"))["gauge_mm"]))
    fit = fit_linear(points)
    base = dict(pen_serial=sim.serial, technician=technician, offset_mm=fit.offset_mm,
                gain=fit.gain, simulated=True, points=points,
                residuals_mm=list(fit.residuals_mm))
    fitted = Calibration.linear(**base)
    checks = []
    for depth_mm in MANUAL_CHECK_DEPTHS_MM:
        actuator_mm = round(fitted.to_actuator_mm(depth_mm), 3)
        if lim["depth_min_mm"] <= actuator_mm <= lim["depth_max_mm"]:
            await tech.call("calibration.move", actuator_mm=actuator_mm)
            checks.append((depth_mm, (await tech.call("calibration.read_gauge"))["gauge_mm"]))
    rates, samples = [], []
    span_hz = lim["speed_max_hz"] - lim["speed_min_hz"]
    for set_hz in (round(lim["speed_min_hz"] + f * span_hz) for f in (0.15, 0.5, 0.85)):
        duration_s = count_window_s(set_hz, 3.0, 0.2)
        spun = await tech.call("calibration.spin", speed_hz=set_hz, duration_s=duration_s)
        frames = [(u, s, bool(r)) for u, s, r in spun["frames"]]
        rates.append((set_hz, count_punctures(set_hz, duration_s, frames).measured_hz))
        samples.append(SpeedSample(set_hz, spun["encoder_hz"]))
    return Calibration.linear(**base, depth_checks=checks, rate_checks=rates,
                              speed_error_pct=check_speed(samples).worst_error_pct)


# ---- virtual time (docs/simulator.md "Virtual time"): a pen whose clock the service's
# controller drives, so a session plays as fast as the computer computes it, and a starved
# process cannot make the pen's time (nor its lease) run out: that clock stops too.

@pytest.fixture
def vsim() -> Iterator[PenSimulator]:
    """`sim` on virtual time (seed 5, as `sim`): what `smp serve --port pensim://` makes with
    SMP_SIM_CLOCK=virtual."""
    from simulators.clock import VirtualClock

    with PenSimulator(seed=5, clock=VirtualClock(host_driven=True)) as s:
        yield s


class PenMoment:
    """Calls `action()` at the first step of a virtual pen's clock at which `due()` holds, in
    the advancing thread (keep it short: no waits), after the pen has run up to that step. No
    wall-clock race: it happens at that moment of the pen's time however long a loaded machine
    deschedules the test. With `hold`, the pen's time then stands still until `release()`
    (the advancing thread waits here: no step, no frame, no lease runs on), so a test can act
    (a client goes, a stop) and let time go on once the service has taken what it did. A hang
    guard: held for 2 x WAIT_S of wall time at most."""

    def __init__(self, sim: PenSimulator, action=None, hold: bool = False) -> None:
        self.sim, self.action, self.hold = sim, action, hold
        self.fired = threading.Event()
        self._released = threading.Event()
        sim.clock.on_advance(self._watch)  # type: ignore[attr-defined]

    def due(self) -> bool:
        return True  # the next step

    def _watch(self, _now_s: float) -> None:
        if not self.due():
            return
        self._forget()
        if self.action is not None:
            self.action()
        self.fired.set()
        if self.hold:
            self._released.wait(WAIT_S * 2)

    async def reached(self, what: str = "the moment") -> None:
        await wait_until(self.fired.is_set, what=what)

    def release(self) -> None:
        """Let the pen's time go on; a moment not reached yet never comes."""
        self._forget()
        self._released.set()

    def _forget(self) -> None:
        with contextlib.suppress(ValueError):  # this thread and the advancing one, both
            self.sim.clock.remove_listener(self._watch)  # type: ignore[attr-defined]


class InNeedleRun(PenMoment):
    """A `PenMoment` at the first impression (or the `impressions`-th) of the pen's needle run
    `run_index` (0: the next time the needle starts; a session starts it once per pass), or
    with `at_start` as the needle starts."""

    def __init__(self, sim: PenSimulator, run_index: int, action=None, hold: bool = False,
                 at_start: bool = False, impressions: int = 1) -> None:
        self.run_index, self.at_start, self.impressions = run_index, at_start, impressions
        self._runs, self._running, self._impressions = -1, False, 0
        super().__init__(sim, action, hold)

    def due(self) -> bool:
        from firmware_protocol.codes import FirmwareState

        fw = self.sim.firmware
        running = fw.state is FirmwareState.RUNNING
        if running and not self._running:
            self._runs += 1
            self._impressions = fw.impressions
        self._running = running
        return running and self._runs == self.run_index and (
            self.at_start or fw.impressions - self._impressions >= self.impressions)


async def while_held(moment: PenMoment, act, taken, what: str = "the service to take it"):
    """With the pen's time held at `moment` (reached): start `act` (a coroutine), wait until
    the service has taken it (`taken()`), then let the pen's time go on; `act`'s answer."""
    task = asyncio.ensure_future(act)
    try:
        await wait_until(lambda: taken() or task.done(), what=what)
    finally:
        moment.release()
    return await task


async def pen_time_passes(sim: PenSimulator, seconds: float) -> None:
    """Let `seconds` of a virtual pen's time pass, waiting on its clock as a host does: its
    driver then moves it as fast as the host keeps up (a wait that no host thread makes on that
    clock sees it move at the wall's pace only)."""
    from smpdevice.link.clock import timebase_for

    until_s = sim.clock.now() + seconds
    cond = timebase_for(sim.clock).condition()  # type: ignore[arg-type]

    def wait() -> None:
        with cond:
            cond.wait_for(lambda: sim.clock.now() >= until_s, seconds)

    while sim.clock.now() < until_s:  # (a wait_for ends early past its wall-clock guard)
        await asyncio.to_thread(wait)


@contextlib.contextmanager
def pen_time_runs(sim: PenSimulator) -> Iterator[None]:
    """A virtual pen's time goes on as fast as the host keeps up while the block runs, as
    while a session waits on it: a thread of the test waits on the pen's clock. (Else, while
    only requests through the service are in flight, it goes at the wall's pace: nobody in
    the service waits on it then; docs/simulator.md "Virtual time".)"""
    from smpdevice.link.clock import timebase_for

    done = threading.Event()
    cond = timebase_for(sim.clock).condition()  # type: ignore[arg-type]

    def wait() -> None:
        with cond:
            while not done.is_set():
                cond.wait_for(done.is_set, None)

    waiter = threading.Thread(target=wait, name="pen-time-runs", daemon=True)
    waiter.start()
    try:
        yield
    finally:
        done.set()
        cond.notify_all()
        waiter.join(WAIT_S)
