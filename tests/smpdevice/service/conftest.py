"""A real simulated pen behind a real service on loopback (port 0) and a private data dir."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from simulators import PenSimulator
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


@pytest.fixture
def service(sim, data_dir) -> Iterator[ServiceHandle]:
    options = ServiceOptions(port=sim.url, listen="127.0.0.1:0", data_dir=data_dir,
                             lease_ms=300, calibration=true_calibration(sim))
    with ServiceHandle(options) as handle:
        yield handle


async def connect(service: ServiceHandle, role: Role = Role.OPERATOR,
                  unix: bool = False) -> ServiceClient:
    url = f"unix://{service.socket_path}" if unix else service.url
    return await ServiceClient.connect(url, token=service.token(role), role=role)


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
