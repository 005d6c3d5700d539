"""Review 17 (b17b, fixed): `calibration.auto` (`smp calibrate --service URL --auto`) ran the whole
calibration, the needle spun at three speeds, against a service store another program holds
locked, and only then fails at the save (after SQLite's 5 s wait). docs/technicians.md: "The
database is opened to write before the pen moves: ... one another program holds locked
(refused after SQLite's 5 s wait, exit 3 ...) stops the command there, never after your
readings"; `smp calibrate` at the station checks it first (`require_writable`), the service's
run does not (its store's constructor opens nothing to write when the schema is current)."""

from __future__ import annotations

import sqlite3

import pytest

from smpdevice.calibration.store import CALIBRATIONS_NAME, CalibrationStore
from smpdevice.records import readonly
from smpdevice.service.auth import Role
from smpdevice.service.client import ServiceError
from tests.smpdevice.service.conftest import (  # noqa: F401 (fixtures)
    connect,
    data_dir,
    run,
    service,
    vsim,
)


@pytest.fixture
def sim(vsim):  # noqa: F811
    return vsim


@pytest.fixture(autouse=True)
def short_busy_wait(monkeypatch):
    """The lock is held through each whole call: the in-process service's store is refused
    however short its wait for it (readonly.BUSY_WAIT_S, 5 s in the product)."""
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", 0.2)


def test_a_locked_store_is_refused_before_the_needle_runs(service, data_dir):  # noqa: F811
    path = data_dir / CALIBRATIONS_NAME
    CalibrationStore(path)  # the current schema, as any station that calibrated has it
    strokes: list[int] = []
    service.pen.add_telemetry_listener(lambda t: strokes.append(t.strokes))
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another program writing

    async def main() -> str:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        try:
            answer = await tech.call("calibration.auto", technician="ana", depth_points=3,
                                     spin_seconds=0.3)
            outcome = f"answered: passed={answer['passed']}"
        except ServiceError as exc:
            outcome = f"refused: {exc}"
        await tech.close()
        return outcome

    try:
        outcome = run(main())
    finally:
        locker.rollback()
        locker.close()
    spun = (max(strokes) - min(strokes)) if strokes else 0
    assert spun == 0, f"the needle made {spun} strokes before the locked store refused ({outcome})"
    assert "another program" in outcome, outcome
    assert "--db" not in outcome, outcome  # a client of the service has no --db to pass


def test_a_guided_run_is_refused_at_its_begin_when_the_store_is_locked(service, data_dir):  # noqa: F811
    """`calibration.begin` (a guided run's first step): the technician's readings would be
    refused at `calibration.save`; refused now, the pen left idle."""
    path = data_dir / CALIBRATIONS_NAME
    CalibrationStore(path)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")

    async def main() -> tuple[str, str]:
        tech = await connect(service, Role.TECHNICIAN)
        await tech.drive(lease_ms=2000)
        try:
            await tech.call("calibration.begin")
            outcome = "begun"
        except ServiceError as exc:
            outcome = f"refused: {exc}"
        state = (await tech.call("pen.state"))["state"]
        await tech.close()
        return outcome, state

    try:
        outcome, state = run(main())
    finally:
        locker.rollback()
        locker.close()
    assert outcome.startswith("refused") and "another program" in outcome, outcome
    assert state == "idle", state
