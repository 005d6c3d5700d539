"""Review 14 (cli): a stored calibration whose gain was edited by hand (0.9455 -> 0.6) was
listed as valid and drove the needle's depth. A row whose offset or gain is not the fit of
its own points is now damaged: never used, named in listings; and one is never saved."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from smpdevice.calibration.store import CalibrationStore, CalibrationStoreError
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration, CalibrationError
from tests.smpdevice.calibration.test_calibration_store import cal
from tests.smpdevice.conftest import STATION_SPEED_CHECK


@pytest.mark.parametrize("field,value", [("gain", 0.6), ("offset_mm", -0.1)])
def test_an_edited_fit_is_damaged_never_used(tmp_path, field, value):
    path = tmp_path / "calibrations.sqlite"
    store = CalibrationStore(path)
    edited = cal()
    store.save(edited)
    record = json.loads(edited.model_dump_json())
    record[field] = value  # valid on its own: only its own points say it is not the fit
    assert Calibration.model_validate(record).gain > 0
    with store._connect() as db:
        db.execute(f"UPDATE calibrations SET record_json = ?, {field} = ?",
                   (json.dumps(record), value))
    with pytest.raises(CalibrationStoreError, match=f"damaged .*its {field}"):
        store.latest_valid(edited.pen_serial, now=edited.created_at + timedelta(days=1))
    listed = CliRunner().invoke(main, ["calibrations", "list", "--db", str(path), "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["status"] for row in json.loads(listed.stdout)] == ["damaged"]


def test_a_fit_that_contradicts_its_points_is_not_saved(tmp_path):
    store = CalibrationStore(tmp_path / "calibrations.sqlite")
    good = cal()
    bad = Calibration.model_validate({**json.loads(good.model_dump_json()), "gain": 0.6})
    with pytest.raises(CalibrationError, match="not the fit of its own points"):
        store.save(bad)
    assert store.list() == []
    store.save(good)  # a consistent one is saved as before
    with pytest.raises(CalibrationError, match="0 fit points"):  # review 16: nothing to check
        store.save(Calibration.linear(pen_serial="SMP-AAAA0001", technician="ana",
                                      offset_mm=-0.3, gain=0.6, **STATION_SPEED_CHECK))
    assert len(store.list()) == 1
