"""Review 17 (b17b, fixed): a calibration database another program locks during a run (after
the start-up check) lost every reading: the save waited SQLite's 5 s, then the run ended with
a bare error, no report. docs/technicians.md: a locked database "stops the command there,
never after your readings". Now the save tries again for `saving.SAVE_RETRY_S`, saying so; a
save still refused keeps the report (every reading), the measured calibration in
`report.unsaved` (saved later by the caller) and the store's error in `report.save_error`;
nothing is installed. The real controller and simulated pen, a real SQLite lock."""

from __future__ import annotations

import sqlite3

import pytest

from smpdevice.calibration import saving
from smpdevice.calibration.gauges import GaugeRequest, SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings, format_report
from smpdevice.calibration.store import CalibrationStore, CalibrationStoreBusy
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController, State
from smpdevice.records import readonly
from tests.smpdevice.virtual_time import virtual_sim

RETRYING = "locked by another program; trying the save again"


@pytest.fixture(autouse=True)
def short_busy_wait(monkeypatch):
    """Each save's own wait for the lock (readonly.BUSY_WAIT_S, 5 s in the product) cut short:
    the lock is held until the run says it tries again (or to the end), so the first save is
    refused however short the wait."""
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", 0.2)


class Locker:
    """Another program's write lock on the database, taken at the last verify reading."""

    def __init__(self, path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.held = False

    def take(self) -> None:
        if not self.held:
            self.conn.execute("BEGIN IMMEDIATE")
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.conn.rollback()


def _run(tmp_path, on_echo=lambda line, locker: None):
    path = tmp_path / "c.sqlite"
    store = CalibrationStore(path)
    locker = Locker(path)
    lines: list[str] = []

    def echo(line: str) -> None:
        lines.append(line)
        on_echo(line, locker)

    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        class LockingGauge(SimulatorGauge):
            def read_mm(self, request: GaugeRequest) -> float:
                if request.label.startswith("Verify at 1.5"):
                    locker.take()
                return super().read_mm(request)

        try:
            report = run_calibration(ctl, LockingGauge(sim), technician="ana", store=store,
                                     settings=CalibrationSettings(spin_duration_s=0.3),
                                     echo=echo)
        finally:
            held = locker.held
            locker.release()
            locker.conn.close()
        installed, state = ctl.calibration, ctl.state
    return report, lines, held, installed, state, store


def test_a_lock_let_go_while_the_save_tries_again_saves_the_run(tmp_path):
    def let_go(line: str, locker: Locker) -> None:  # once the run says it tries again
        if RETRYING in line:
            locker.release()

    report, lines, _, installed, state, store = _run(tmp_path, let_go)
    assert any(RETRYING in line for line in lines), lines[-3:]
    assert report.passed and report.saved, format_report(report)
    assert store.latest(report.pen_serial).calibration_id == report.calibration.calibration_id
    assert installed is not None and state is State.IDLE


def test_a_lock_held_past_the_retries_keeps_the_report_and_the_calibration(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr(saving, "SAVE_RETRY_S", 0.0)  # one try (SQLite's own wait)
    report, _, held, installed, state, store = _run(tmp_path)
    text = format_report(report)
    assert held, "the lock was not taken"
    assert not report.passed and not report.saved and report.calibration is None, text
    assert isinstance(report.save_error, CalibrationStoreBusy), report.save_error
    assert "Depth points" in text and "not saved:" in text and "another program" in text, text
    assert installed is None and state is State.IDLE  # nothing installed, calibrating left
    assert store.latest(report.pen_serial) is None
    store.save(report.unsaved)  # the lock gone, the measured calibration can still be saved
    assert store.latest(report.pen_serial).calibration_id == report.unsaved.calibration_id
