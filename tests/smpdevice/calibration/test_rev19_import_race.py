"""Known defect of session 18: `smp calibrations import FILE` looked for a newer stored
calibration of the pen, then saved in a second transaction: a calibration another program
saved between the two was superseded silently by the older, imported one (the pen's current
calibration became the older). The look is now made inside the save's own write transaction.
Real SQLite: a second connection holds the write lock with a newer calibration of the pen in
it, commits once the import is inside its save; the import must refuse, nothing changed."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from datetime import timedelta

import pytest

from smpdevice.calibration.checked import to_store
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.unsaved import check_unsaved, save_unsaved, write_unsaved
from smpdevice.control.calibration import Calibration, CalibrationError, today_utc
from tests.smpdevice.calibration.test_rev18_store_speed_rule import RANGE_HZ, STATION
from tests.smpdevice.conftest import fit_points


def _cal(cid: str, made) -> Calibration:
    return Calibration.linear(pen_serial="SMP-1", technician="ana", offset_mm=-0.3, gain=1.0,
                              calibration_id=cid, created_at=made,
                              depth_checks=[(d, d) for d in (0.5, 1.0, 1.5)],
                              **{**fit_points(-0.3, 1.0), "rate_checks": STATION,
                                 "speed_error_pct": 0.3})


def _in_save(thread: threading.Thread) -> bool:
    """The import's thread is inside `CalibrationStore.save`: its own looks are done."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "save" and "calibration/store.py" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_a_save_between_the_imports_look_and_its_save_is_not_superseded(tmp_path):
    made = today_utc() - timedelta(hours=2)
    path = write_unsaved(_cal("c0ffee0000a1", made), RANGE_HZ, tmp_path)
    kept = check_unsaved(path, pen_serial="SMP-1")
    store = CalibrationStore(tmp_path / "c.sqlite")
    newer = to_store(_cal("c0ffee0000b2", made + timedelta(hours=1)))
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another program's save, not committed yet
    other.execute("INSERT INTO calibrations (calibration_id, pen_serial, technician, "
                  "created_at, expires_at, offset_mm, gain, record_json, simulated, saved_seq) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 1)",
                  (newer.calibration_id, newer.pen_serial, newer.technician,
                   newer.created_at.isoformat(), newer.expires_at.isoformat(),
                   newer.offset_mm, newer.gain, newer.model_dump_json()))
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(save_unsaved(path, kept, store))
        except Exception as exc:  # any: asserted below
            outcome.append(exc)

    importer = threading.Thread(target=run)
    importer.start()
    deadline = time.monotonic() + 4.0  # below SQLite's 5 s wait for the lock
    while not _in_save(importer) and importer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.001)
    assert _in_save(importer), outcome  # waiting on the lock the other program holds
    other.execute("COMMIT")  # the other save lands between the import's look and its insert
    other.close()
    importer.join(10)
    [result] = outcome
    assert isinstance(result, CalibrationError), result  # was: saved, superseding b2
    assert "older than pen SMP-1's newest stored calibration c0ffee0000b2" in str(result)
    assert "Nothing was saved" in str(result)
    assert [c.calibration_id for c in store.list("SMP-1")] == ["c0ffee0000b2"]
    assert store.latest("SMP-1").calibration_id == "c0ffee0000b2"
    assert path.exists()  # kept: nothing was imported


@pytest.mark.parametrize("order", ["already", "older", "newer"])
def test_the_look_in_the_save_keeps_each_refusal(tmp_path, order):
    made = today_utc() - timedelta(hours=2)
    path = write_unsaved(_cal("c0ffee0000a1", made), RANGE_HZ, tmp_path)
    store = CalibrationStore(tmp_path / "c.sqlite")
    if order == "already":
        store.save(_cal("c0ffee0000a1", made), speed_range_hz=RANGE_HZ)
    else:
        shift = timedelta(hours=1 if order == "older" else -1)
        store.save(_cal("c0ffee0000b2", made + shift), speed_range_hz=RANGE_HZ)
    kept = check_unsaved(path, pen_serial="SMP-1")
    if order == "newer":  # the import is the newest: saved, the file removed
        assert save_unsaved(path, kept, store).calibration_id == "c0ffee0000a1"
        assert store.latest("SMP-1").calibration_id == "c0ffee0000a1" and not path.exists()
        return
    before = [c.calibration_id for c in store.list()]
    with pytest.raises(CalibrationError, match="already saved" if order == "already"
                       else "older than pen SMP-1's newest"):
        save_unsaved(path, kept, store)
    assert [c.calibration_id for c in store.list()] == before and path.exists()
