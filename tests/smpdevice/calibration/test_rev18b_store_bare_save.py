"""Known defect (closing 18, "Left"): a bare `CalibrationStore.save(cal)` (no pen speed range
given) of a hand-built calibration with no rate checks at all was still taken, though every run
path refuses it (`calibration.savable.check_savable`). Now the store applies that one rule to
every save: refused with a CalibrationError naming what is missing, nothing stored, and the
pen's current calibration unchanged. Real SQLite; no pen needed."""

from __future__ import annotations

import sqlite3

import pytest

from smpdevice.calibration.store import CalibrationStore
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.conftest import fit_points

SERIAL = "SMP-AAAA0001"


def _cal(**speed_check) -> Calibration:
    """A consistent calibration (its points fit it); `speed_check` replaces the station's."""
    return Calibration.linear(pen_serial=SERIAL, technician="ana", offset_mm=-0.3, gain=1.0,
                              **{**fit_points(-0.3, 1.0), **speed_check})


def _rows(path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM calibrations").fetchone()[0]


@pytest.mark.parametrize("missing", [
    {"rate_checks": [], "speed_error_pct": None},
    {"rate_checks": []},
    {"speed_error_pct": None},
], ids=["no speed check", "no rate checks", "no speed error"])
def test_a_bare_save_without_a_speed_check_is_refused_and_stores_nothing(tmp_path, missing):
    path = tmp_path / "calibrations.sqlite"
    store = CalibrationStore(path)
    current = _cal()
    store.save(current)  # the station's speed check: saved by a bare save as before
    bare = _cal(**missing)
    with pytest.raises(CalibrationError) as refused:
        store.save(bare)
    message = str(refused.value)
    names = [name for name in ("rate_checks", "speed_error_pct") if name in missing]
    assert f"calibration '{bare.calibration_id}' is refused: it has no " \
           f"{' and no '.join(names)}" in message, message
    assert "station's speed check" in message and "Nothing was stored" in message, message
    assert "smp calibrate" in message, message  # says what to do instead
    assert _rows(path) == 1 and store.get(bare.calibration_id) is None
    assert store.latest(SERIAL) == current and store.latest_valid(SERIAL) == current


def test_the_first_bare_save_of_a_station_without_a_speed_check_leaves_no_calibration(tmp_path):
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    with pytest.raises(CalibrationError, match="no rate_checks and no speed_error_pct"):
        store.save(_cal(rate_checks=[], speed_error_pct=None))
    assert store.list() == [] and store.latest(SERIAL) is None
