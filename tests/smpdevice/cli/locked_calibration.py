"""A real `smp calibrate --auto` on a virtual-clock simulated pen whose calibration database
another program locks at the last verify reading, and keeps locked until the run ends: its
save is refused (one try, SQLite's wait made short: the lock outlasts it either way)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smpdevice.calibration import saving
from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.records import readonly

PORT = "pensim://?clock=virtual"


def calibrate_locked(mp: pytest.MonkeyPatch, db: Path, *words: str) -> Any:
    """The calibrate's CliRunner result; `words`: more options (`--db`)."""
    mp.setattr(saving, "SAVE_RETRY_S", 0.0)
    mp.setattr(readonly, "BUSY_WAIT_S", 0.2)
    CalibrationStore(db).require_writable()
    locker = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    read = SimulatorGauge.read_mm

    def locking_read(self: SimulatorGauge, request: GaugeRequest) -> float:
        if request.label.startswith("Verify at 1.5") and not locker.in_transaction:
            locker.execute("BEGIN IMMEDIATE")
        return read(self, request)

    mp.setattr(SimulatorGauge, "read_mm", locking_read)
    try:
        return CliRunner().invoke(main, ["calibrate", "--port", PORT, "--auto",
                                         "--spin-seconds", "0.3", *words])
    finally:
        if locker.in_transaction:
            locker.rollback()
        locker.close()
