"""Review 17 (b17b, fixed): `run_calibration` took a store that cannot save, ran the whole
calibration (the needle spun at three speeds) and only then refuses at the save.
docs/integration.md: "`run_calibration` checks every argument (the technician's name, gauge,
settings, store, `echo`, `should_stop`) before the pen moves: `InvalidArgument`, nothing
sent"; smpdevice/calibration/arguments.py names "a store that cannot save" as what it refuses.
A `CalibrationStore(path, readonly=True)` has a `save()` that always refuses."""

from __future__ import annotations

import sqlite3

from smpdevice.calibration.gauges import SimulatorGauge
from smpdevice.calibration.report import CalibrationSettings
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.workflow import run_calibration
from smpdevice.control import PenController
from smpdevice.control.states import State
from smpdevice.records import readonly
from tests.smpdevice.virtual_time import virtual_sim


def run_with(store: CalibrationStore) -> tuple[str, int]:
    """The error `run_calibration` ended with, and the strokes the needle made meanwhile."""
    strokes: list[int] = []
    with virtual_sim(seed=0) as sim, PenController.connect(sim.url, clock=sim.clock) as ctl:
        ctl.add_telemetry_listener(lambda t: strokes.append(t.strokes))
        try:
            run_calibration(ctl, SimulatorGauge(sim), technician="ana", store=store,
                            settings=CalibrationSettings(spin_duration_s=0.3))
            error = ""
        except Exception as exc:  # what it was refused with
            error = f"{type(exc).__name__}: {exc}"
        assert ctl.state is State.IDLE
    return error, (max(strokes) - strokes[0]) if strokes else 0


def test_a_read_only_store_is_refused_before_the_needle_runs(tmp_path):
    CalibrationStore(tmp_path / "c.sqlite")  # a real calibration database
    error, strokes = run_with(CalibrationStore(tmp_path / "c.sqlite", readonly=True))
    assert strokes == 0, f"the needle made {strokes} strokes for a store that cannot save ({error})"
    assert error and ("store" in error or "read-only" in error), error  # refused, naming it


def test_a_store_another_program_holds_locked_is_refused_before_the_needle_runs(tmp_path,
                                                                                 monkeypatch):
    """A writable store whose file another program holds locked (past SQLite's wait: held to
    the end, so refused however short; readonly.BUSY_WAIT_S cut from 5 s to 0.2 s)."""
    monkeypatch.setattr(readonly, "BUSY_WAIT_S", 0.2)
    CalibrationStore(tmp_path / "c.sqlite")
    locker = sqlite3.connect(tmp_path / "c.sqlite", isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        error, strokes = run_with(CalibrationStore(tmp_path / "c.sqlite"))
    finally:
        locker.rollback()
        locker.close()
    assert strokes == 0, f"the needle made {strokes} strokes for a locked store ({error})"
    assert "CalibrationStoreBusy" in error and "another program" in error, error
