"""One damaged calibration row (review 12, REV2A-1: a record edited to be valid for 73 years,
which the model refuses) never hides the others: `smp calibrations list` lists every sound row,
names the damaged one (a warning; `"status": "damaged"` in --json) and exits 0, so the advice
"recalibrate the pen" can be followed and seen to work. It is never used to arm."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

from click.testing import CliRunner

from simulators.pen_model import PenModel
from smpdevice.calibration.store import CalibrationStore
from smpdevice.cli import main
from smpdevice.control.calibration import Calibration
from tests.smpdevice.conftest import fit_points


def _two_calibrations(path):
    model = PenModel(seed=0)
    store = CalibrationStore(path)
    old, new = (Calibration.linear(pen_serial=model.serial, technician=who,
                                   offset_mm=-model.offset_mm, gain=model.gain,
                                   **fit_points(-model.offset_mm, model.gain))
                for who in ("ana", "bo"))
    store.save(old)
    store.save(new)
    with sqlite3.connect(path) as db:  # the older one edited: valid until 2099
        db.execute("UPDATE calibrations SET record_json = json_set(record_json, "
                   "'$.expires_at', '2099-01-01T00:00:00Z') WHERE calibration_id = ?",
                   (old.calibration_id,))
    return store, old, new


def test_a_damaged_row_is_named_and_the_rest_listed(tmp_path):
    path = tmp_path / "calibrations.sqlite"
    store, old, new = _two_calibrations(path)
    result = CliRunner().invoke(main, ["calibrations", "list", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert new.calibration_id in result.output
    assert f"warning: calibration {old.calibration_id}" in result.output
    assert "damaged" in result.output
    listed = CliRunner().invoke(main, ["calibrations", "list", "--db", str(path), "--json"])
    rows = {row["calibration_id"]: row["status"] for row in json.loads(listed.stdout)}
    assert rows == {new.calibration_id: "valid", old.calibration_id: "damaged"}
    latest = store.latest_valid(new.pen_serial, now=new.created_at + timedelta(days=1))
    assert latest is not None and latest.calibration_id == new.calibration_id
