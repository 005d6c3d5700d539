"""A real simulated pen behind a real service on loopback (port 0) and a private data dir."""

from __future__ import annotations

import asyncio
import contextlib
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
    with PenSimulator(seed=5) as s:
        yield s


# The pen's own lease. These tests run on wall time beside others (four workers on two loaded
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
