"""Fixtures for service tests on a simulated pen on virtual time whose service holds leases
as `smp serve` does: import them (`sim`, `service`) into a test module, with the session-1
profile and a clear screening to run through it."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import pytest

from simulators import PenSimulator
from smpdevice.service.runner import ServiceHandle
from smpdevice.sessions.screening import QUESTIONS

from .conftest import service_with_held_leases

PROFILE = (resources.files("smpdevice") / "data" / "session1_base_density.yaml").read_text()
CLEAR = {name: False for name in QUESTIONS}


@pytest.fixture(name="sim")
def virtual_sim(vsim) -> PenSimulator:
    return vsim


@pytest.fixture(name="service")
def held_service(sim, data_dir) -> Iterator[ServiceHandle]:
    with service_with_held_leases(sim, data_dir) as handle:
        yield handle
