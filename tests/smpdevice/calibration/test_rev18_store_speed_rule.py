"""Known defect (closing 17, "Left"): `CalibrationStore.save` took a hand-built calibration with
no rate checks, or rate checks not at the station's three speeds, that the run paths and the
service refuse. The rule is now one function (`calibration.savable.check_savable`) that the
store applies given the pen's speed range (`save(cal, speed_range_hz=...)`), that a run's save
and the service's `calibration.save` apply, and that an import of a kept calibration applies:
refused, naming what is missing, nothing stored. Real SQLite; no pen needed."""

from __future__ import annotations

import pytest

from smpdevice.calibration.savable import check_savable
from smpdevice.calibration.store import CalibrationStore
from smpdevice.calibration.unsaved import import_unsaved, write_unsaved
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.conftest import fit_points

RANGE_HZ = (30.0, 180.0)  # the simulator's pen: station speeds 52, 105, 158 Hz
STATION = [(52.0, 52.1), (105.0, 104.8), (158.0, 158.3)]
CASES = {  # rate checks, speed error, what the refusal names
    "no speed check": ([], None, "no rate_checks and no speed_error_pct"),
    "one speed": ([(105.0, 105.0)], 0.1, "hold 1 speed"),
    "three speeds 1 Hz apart": ([(104.0, 104.0), (105.0, 105.0), (106.0, 106.0)], 0.1,
                                "none is at 52, 158 Hz"),
    "not the station's": ([(40.0, 40.0), (105.0, 105.0), (170.0, 170.0)], 0.1,
                          "none is at 52, 158 Hz"),
}


def _cal(rates, speed_error_pct, cid="c0ffee000001"):
    return Calibration.linear(pen_serial="SMP-1", technician="ana", offset_mm=-0.3, gain=1.0,
                              calibration_id=cid, **{**fit_points(-0.3, 1.0),
                                                     "rate_checks": rates,
                                                     "speed_error_pct": speed_error_pct})


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_store_refuses_what_a_run_refuses(tmp_path, case):
    rates, error_pct, names = case
    store = CalibrationStore(tmp_path / "c.sqlite")
    with pytest.raises(CalibrationError) as refused:
        store.save(_cal(rates, error_pct), speed_range_hz=RANGE_HZ)
    assert names in str(refused.value) and "Nothing was stored" in str(refused.value)
    assert store.list() == []
    store.save(_cal(STATION, 0.3), speed_range_hz=RANGE_HZ)  # the station's: saved
    assert [c.calibration_id for c in store.list()] == ["c0ffee000001"]


@pytest.mark.parametrize("case", list(CASES.values())[:3], ids=list(CASES)[:3])
def test_without_the_pens_range_a_check_at_one_point_is_still_refused(tmp_path, case):
    """(40, 105, 170 Hz are the station's speeds of a 12..198 Hz pen: only its range tells.)"""
    rates, error_pct, _ = case
    with pytest.raises(CalibrationError, match="rate_checks"):
        check_savable(_cal(rates, error_pct))
    check_savable(_cal(STATION, 0.3))  # spread as the station's: 15/50/85 % of 30..180
    # a bare save(cal) is refused by the store too: no speed check, or one at one point
    store = CalibrationStore(tmp_path / "c.sqlite")
    with pytest.raises(CalibrationError, match="rate_checks"):
        store.save(_cal(rates, error_pct))
    assert store.list() == []


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_a_kept_file_of_a_hand_built_calibration_is_not_imported(tmp_path, case):
    """A file with a consistent checksum (written as smp calibrate writes it) still goes
    through every check a save applies."""
    rates, error_pct, _ = case
    path = write_unsaved(_cal(rates, error_pct), RANGE_HZ, tmp_path)
    store = CalibrationStore(tmp_path / "c.sqlite")
    with pytest.raises(CalibrationError, match="rate_checks|speed_error_pct"):
        import_unsaved(path, store)
    assert store.list() == [] and path.exists()
